## Reference fits for structured random-effects covariances (us, diag, cs, ar1, toep, rr).
##
## R 4.2.2, glmmTMB 1.1.5 (TMB 1.9.2), lme4 1.1-31 for the plain-syntax equivalents.
## Run from the repository root:
##   Rscript tests/reference/glmmtmb/make_reference.R
## It reads the bundled datasets (sparselme/datasets/data; Machines is written by
## make_machines_dataset.R and checked here against nlme's copy), writes the simulated
## crossed design next to itself (crossed_ar1.csv; the fit reads the CSV back) and writes
## tests/reference/glmmtmb/reference.json.  Tests never need R.
##
## Fits whose Hessian is not positive definite, or that report false convergence, are kept:
## glmmTMB's logLik() is NA for them, so `logLik_at_estimate` (minus the objective at the
## returned parameters) and `deviance_at_estimate` are recorded for every fit.
suppressPackageStartupMessages({ library(glmmTMB); library(lme4); library(jsonlite) })

out_dir <- "tests/reference/glmmtmb"
data_dir <- "sparselme/datasets/data"
load_data <- function(name) {
  meta <- fromJSON(file.path(data_dir, paste0(name, ".meta.json")), simplifyVector = FALSE)
  d <- read.csv(gzfile(file.path(data_dir, paste0(name, ".csv.gz"))), stringsAsFactors = FALSE,
                colClasses = "character")
  for (col in meta$columns) {
    x <- d[[col$name]]
    d[[col$name]] <- switch(col$type,
      numeric = as.numeric(x),
      factor = factor(x, levels = unlist(col$levels)),
      ordered = factor(x, levels = unlist(col$levels), ordered = TRUE))
  }
  d
}
arr <- function(x) I(if (is.null(x)) character(0) else unname(as.vector(x)))
mat <- function(x) unname(as.matrix(x))
capture <- function(expr) {
  warn <- character(0)
  val <- tryCatch(withCallingHandlers(expr,
    warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") }),
    error = function(e) structure(list(message = conditionMessage(e)), class = "captured_error"))
  list(value = val, warnings = arr(unique(warn)),
       error = if (inherits(val, "captured_error")) val$message else NULL)
}

## natural parameters of one term's covariance matrix, by glmmTMB's structure name
natural <- function(V, structure) {
  sd <- attr(V, "stddev"); C <- attr(V, "correlation"); k <- nrow(V)
  out <- list(structure = structure, names = arr(colnames(V)), variances = arr(diag(V)),
              sd = arr(sd), cov = mat(V[, , drop = FALSE]))
  if (k > 1) out$correlation <- mat(C)
  if (structure == "ar1" && k > 1) {
    out$ar1_rho <- C[2, 1]
    out$ar1_variance <- V[1, 1]
  }
  if (structure == "cs" && k > 1) out$cs_rho <- C[2, 1]
  if (structure == "toep" && k > 1) out$toep_rho_by_lag <- arr(C[-1, 1])
  out
}

tmb_case <- function(formula, data, data_name, REML, lme4_formula = NULL, note = NULL) {
  secs <- system.time(r <- capture(glmmTMB(formula, data, REML = REML)))[["elapsed"]]
  if (!is.null(r$error)) {
    return(list(formula = deparse1(formula), data = data_name, REML = REML, error = r$error))
  }
  m <- r$value
  vc <- VarCorr(m)$cond
  structs <- vapply(vc, function(V) names(attr(V, "blockCode")), "")
  ll <- suppressWarnings(as.numeric(logLik(m)))
  vcv <- suppressWarnings(vcov(m)$cond)
  out <- list(
    formula = deparse1(formula), data = data_name, REML = REML, nobs = nobs(m),
    logLik = if (is.na(ll)) NULL else ll,
    logLik_at_estimate = -m$fit$objective,
    deviance_at_estimate = 2 * m$fit$objective,
    n_parameters = length(m$fit$par),
    fixef = as.list(fixef(m)$cond),
    se = as.list(ifelse(diag(vcv) >= 0, sqrt(pmax(diag(vcv), 0)), NA_real_)),
    vcov = mat(vcv),
    sigma = sigma(m),
    theta = arr(getME(m, "theta")),
    par = list(names = arr(names(m$fit$par)), values = arr(m$fit$par)),
    terms = arr(names(vc)),
    structures = arr(structs),
    varcorr = setNames(Map(natural, vc, structs), names(vc)),
    convergence = list(code = m$fit$convergence, message = m$fit$message,
                       pdHess = m$sdr$pdHess, iterations = m$fit$iterations,
                       max_abs_gradient = max(abs(m$sdr$gradient.fixed))),
    warnings = r$warnings,
    glmmTMB_seconds = secs)
  if (any(structs == "rr")) {
    out$rr_factor_loadings <- lapply(seq_along(vc), function(i)
      if (structs[i] == "rr") mat(m$obj$env$report(m$fit$parfull)$fact_load[[i]]) else NULL)
  }
  if (!is.null(note)) out$note <- note
  if (!is.null(lme4_formula)) {
    l4 <- capture(lmer(lme4_formula, data, REML = REML))
    out$lme4_equivalent <- list(formula = deparse1(lme4_formula),
                                logLik = as.numeric(logLik(l4$value)),
                                fixef = as.list(fixef(l4$value)),
                                theta = arr(getME(l4$value, "theta")),
                                sigma = sigma(l4$value),
                                messages = arr(l4$value@optinfo$conv$lme4$messages),
                                warnings = l4$warnings)
  }
  cat(sprintf("%-62s REML=%-5s logLik %.6f conv %d pdHess %s %.1f s\n", deparse1(formula),
              REML, -m$fit$objective, m$fit$convergence, m$sdr$pdHess, secs))
  out
}

ref <- list(
  versions = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                  TMB = as.character(packageVersion("TMB")),
                  lme4 = as.character(packageVersion("lme4")),
                  nlme = as.character(packageVersion("nlme")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  glmmTMB_structures = arr(names(glmmTMB:::.valid_covstruct)),
  cases = list())
add <- function(name, ...) {
  for (REML in c(TRUE, FALSE)) {
    ref$cases[[paste0(name, if (REML) "_reml" else "_ml")]] <<- tmb_case(..., REML = REML)
  }
}

## ---- sleepstudy ------------------------------------------------------------------------
sleep <- load_data("sleepstudy")
add("sleepstudy_diag", Reaction ~ Days + diag(Days | Subject), sleep, "sleepstudy",
    lme4_formula = Reaction ~ Days + (Days || Subject))
add("sleepstudy_us", Reaction ~ Days + us(Days | Subject), sleep, "sleepstudy",
    lme4_formula = Reaction ~ Days + (Days | Subject))
add("sleepstudy_ar1", Reaction ~ Days + ar1(0 + factor(Days) | Subject), sleep, "sleepstudy")
add("sleepstudy_ar1_plus_intercept",
    Reaction ~ Days + ar1(0 + factor(Days) | Subject) + (1 | Subject), sleep, "sleepstudy")
add("sleepstudy_cs", Reaction ~ Days + cs(0 + factor(Days) | Subject), sleep, "sleepstudy")
add("sleepstudy_rr1", Reaction ~ Days + rr(Days | Subject, d = 1), sleep, "sleepstudy")

## Independent optimum for the ar1 models, from nlme: an AR(1) term over factor(Days) with
## a residual is V_i = s2_ar * rho^|d| + s2_e * I, which is gls() with
## corExp(form = ~ Days | Subject, nugget = TRUE) (rho = exp(-1/range),
## s2_ar = sigma^2 (1 - nugget), s2_e = sigma^2 nugget); with (1 | Subject) it is lme() with
## that correlation.  `glmmTMB_logLik_at_nlme_estimate` is glmmTMB's own objective at nlme's
## estimate (theta = log sd, rho / sqrt(1 - rho^2); betad = log s2_e; for ML, beta = nlme's).
nlme_ar1 <- function(case, with_intercept) {
  REML <- case$REML
  meth <- if (REML) "REML" else "ML"
  cor <- nlme::corExp(form = ~ Days | Subject, nugget = TRUE)
  fit <- if (with_intercept) {
    nlme::lme(Reaction ~ Days, sleep, random = ~ 1 | Subject, correlation = cor, method = meth,
              control = nlme::lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100,
                                         msMaxEval = 2000, tolerance = 1e-10, msTol = 1e-12))
  } else {
    nlme::gls(Reaction ~ Days, sleep, correlation = cor, method = meth,
              control = nlme::glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10,
                                         msTol = 1e-12))
  }
  cf <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
  rho <- exp(-1 / cf[["range"]])
  s2 <- fit$sigma^2
  out <- list(call = if (with_intercept)
                paste0("lme(Reaction ~ Days, random = ~1 | Subject, correlation = corExp(form = ",
                       "~Days | Subject, nugget = TRUE), method = \"", meth, "\")")
              else paste0("gls(Reaction ~ Days, correlation = corExp(form = ~Days | Subject, ",
                          "nugget = TRUE), method = \"", meth, "\")"),
              logLik = as.numeric(logLik(fit)), ar1_rho = rho, ar1_variance = s2 * (1 - cf[["nugget"]]),
              residual_variance = s2 * cf[["nugget"]],
              fixef = as.list(if (with_intercept) nlme::fixef(fit) else coef(fit)))
  if (with_intercept) out$intercept_variance <- as.numeric(nlme::getVarCov(fit))
  ## glmmTMB's objective at nlme's estimate (terms in formula order: ar1, then (1 | Subject))
  m <- suppressWarnings(glmmTMB(as.formula(case$formula), sleep, REML = REML))
  p <- m$fit$par
  p[names(p) == "betad"] <- log(out$residual_variance)
  p[names(p) == "theta"] <- c(log(sqrt(out$ar1_variance)), rho / sqrt(1 - rho^2),
                              if (with_intercept) log(sqrt(out$intercept_variance)))
  if (!REML) p[names(p) == "beta"] <- unlist(out$fixef)
  out$glmmTMB_logLik_at_nlme_estimate <- -m$obj$fn(p)
  out
}
for (nm in c("sleepstudy_ar1_reml", "sleepstudy_ar1_ml")) {
  ref$cases[[nm]]$nlme_equivalent <- nlme_ar1(ref$cases[[nm]], FALSE)
}
for (nm in c("sleepstudy_ar1_plus_intercept_reml", "sleepstudy_ar1_plus_intercept_ml")) {
  ref$cases[[nm]]$nlme_equivalent <- nlme_ar1(ref$cases[[nm]], TRUE)
}

## ---- Machines (nlme): 6 workers x 3 machines x 3 replicates ----------------------------
machines <- load_data("Machines")
nlme_machines <- as.data.frame(nlme::Machines)
stopifnot(isTRUE(all.equal(machines, nlme_machines, check.attributes = FALSE)),
          identical(levels(machines$Worker), levels(nlme_machines$Worker)),
          is.ordered(machines$Worker))
add("machines_cs", score ~ Machine + cs(0 + Machine | Worker), machines, "Machines")
add("machines_diag", score ~ Machine + diag(0 + Machine | Worker), machines, "Machines",
    lme4_formula = score ~ Machine + (0 + dummy(Machine, "A") | Worker) +
      (0 + dummy(Machine, "B") | Worker) + (0 + dummy(Machine, "C") | Worker))
add("machines_toep", score ~ Machine + toep(0 + Machine | Worker), machines, "Machines")
add("machines_us", score ~ Machine + us(0 + Machine | Worker), machines, "Machines",
    lme4_formula = score ~ Machine + (0 + Machine | Worker))
add("machines_nested", score ~ Machine + (1 | Worker) + (1 | Worker:Machine), machines,
    "Machines", lme4_formula = score ~ Machine + (1 | Worker) + (1 | Worker:Machine))
add("machines_rr1", score ~ Machine + rr(0 + Machine | Worker, d = 1), machines, "Machines")
add("machines_rr2", score ~ Machine + rr(0 + Machine | Worker, d = 2), machines, "Machines")

## ---- crossed design with a structured term (simulated, frozen to crossed_ar1.csv) -----
## 30 subjects x 8 occasions, 3 of 20 items per subject-occasion (720 rows); a subject
## effect that is AR(1) over occasions (sd 1, rho 0.6), item intercepts (sd 0.7),
## residual sd 0.5, y = 2 + 0.5 x + ...
set.seed(2020)
nsubj <- 30; nocc <- 8; nitem <- 20; per <- 3
sim <- expand.grid(k = seq_len(per), occ = seq_len(nocc), subj = seq_len(nsubj))
sim$item <- unlist(lapply(seq_len(nsubj * nocc), function(i) sample(nitem, per)))
u <- t(vapply(seq_len(nsubj), function(s) {
  e <- rnorm(nocc); v <- numeric(nocc); v[1] <- e[1]
  for (t in 2:nocc) v[t] <- 0.6 * v[t - 1] + sqrt(1 - 0.36) * e[t]
  v
}, numeric(nocc)))
itm <- rnorm(nitem, sd = 0.7)
sim$x <- round(rnorm(nrow(sim)), 6)
sim$y <- round(2 + 0.5 * sim$x + u[cbind(sim$subj, sim$occ)] + itm[sim$item] +
               rnorm(nrow(sim), sd = 0.5), 6)
sim$subj <- sprintf("s%02d", sim$subj); sim$item <- sprintf("i%02d", sim$item)
write.csv(sim[, c("subj", "occ", "item", "x", "y")], file.path(out_dir, "crossed_ar1.csv"),
          row.names = FALSE)
crossed <- read.csv(file.path(out_dir, "crossed_ar1.csv"), stringsAsFactors = FALSE)
crossed$subj <- factor(crossed$subj); crossed$item <- factor(crossed$item)
crossed$occ <- factor(crossed$occ, levels = seq_len(nocc))
add("crossed_ar1", y ~ x + ar1(0 + occ | subj) + (1 | item), crossed, "crossed_ar1.csv")
add("crossed_plain", y ~ x + (1 | subj) + (1 | item), crossed, "crossed_ar1.csv",
    lme4_formula = y ~ x + (1 | subj) + (1 | item),
    note = "no structure: the same data with plain intercepts, to compare with lme4")

## Dense brute-force likelihoods, as a check of glmmTMB's optimum: the marginal
## log-likelihood with beta profiled by GLS (REML adds -log|X'V^-1 X|/2 and uses the
## (n - p) log(2 pi) constant), evaluated at glmmTMB's estimate (must equal glmmTMB's
## objective) and maximized by nlminb from glmmTMB's estimate and two other starts.
dense_loglik <- function(V, X, y, REML) {
  R <- tryCatch(chol(V), error = function(e) NULL)
  if (is.null(R)) return(-1e10)
  Xs <- backsolve(R, X, transpose = TRUE); ys <- backsolve(R, y, transpose = TRUE)
  qx <- qr(Xs); r <- qr.resid(qx, ys); n <- nrow(X); k <- ncol(X)
  ll <- -0.5 * (2 * sum(log(diag(R))) + sum(r^2))
  if (REML) ll - 0.5 * ((n - k) * log(2 * pi) + 2 * sum(log(abs(diag(qr.R(qx))))))
  else ll - 0.5 * n * log(2 * pi)
}
dense_check <- function(case, X, y, build_V, q0, starts, natural_of) {
  loglik <- function(q) dense_loglik(build_V(q), X, y, case$REML)
  fits <- lapply(c(list(q0), starts), function(st) nlminb(st, function(q) -loglik(q)))
  obj <- vapply(fits, `[[`, 0, "objective")
  c(list(logLik_at_glmmTMB_estimate = loglik(q0), best_logLik = -min(obj),
         best_logLik_per_start = arr(-obj)), natural_of(fits[[which.min(obj)]]$par))
}
## crossed ar1: V = s2_ar [same subj] rho^|occ lag| + s2_item [same item] + s2_e I;
## q = log sd_ar, atanh rho, log sd_item, log sd_e
same_subj <- outer(as.integer(crossed$subj), as.integer(crossed$subj), "==")
occ_lag <- abs(outer(as.integer(crossed$occ), as.integer(crossed$occ), "-"))
same_item <- outer(as.integer(crossed$item), as.integer(crossed$item), "==") * 1
for (nm in c("crossed_ar1_reml", "crossed_ar1_ml")) {
  case <- ref$cases[[nm]]; vc <- case$varcorr
  ref$cases[[nm]]$dense_check <- dense_check(
    case, model.matrix(~ x, crossed), crossed$y,
    function(q) exp(2 * q[1]) * same_subj * tanh(q[2])^occ_lag + exp(2 * q[3]) * same_item +
      diag(exp(2 * q[4]), nrow(crossed)),
    c(log(vc$subj$sd[1]), atanh(vc$subj$ar1_rho), log(vc$item$sd[1]), log(case$sigma)),
    list(c(0, 0, 0, 0), c(log(2), atanh(-0.3), log(0.2), log(1.5))),
    function(q) list(ar1_rho = tanh(q[2]), ar1_variance = exp(2 * q[1]),
                     item_variance = exp(2 * q[3]), residual_variance = exp(2 * q[4])))
}
## sleepstudy cs over factor(Days): V_i = D (rho J + (1 - rho) I) D + s2_e I with D the 10
## SDs; q = 10 log SDs, logit((rho + 1/9) / (1 + 1/9)), log sd_e
same_sub <- outer(as.integer(sleep$Subject), as.integer(sleep$Subject), "==")
day <- sleep$Days + 1
cs_rho <- function(z) plogis(z) * (1 + 1 / 9) - 1 / 9
for (nm in c("sleepstudy_cs_reml", "sleepstudy_cs_ml")) {
  case <- ref$cases[[nm]]; vc <- case$varcorr$Subject
  ref$cases[[nm]]$dense_check <- dense_check(
    case, model.matrix(~ Days, sleep), sleep$Reaction,
    function(q) {
      sd <- exp(q[1:10])[day]; rho <- cs_rho(q[11])
      same_sub * outer(sd, sd) * (rho + (1 - rho) * (outer(day, day, "=="))) +
        diag(exp(2 * q[12]), nrow(sleep))
    },
    c(log(vc$sd), qlogis(min((vc$cs_rho + 1 / 9) / (1 + 1 / 9), 1 - 1e-12)), log(case$sigma)),
    list(c(rep(log(30), 10), 0, log(25)), c(rep(log(20), 10), 2, log(15))),
    function(q) list(cs_rho = cs_rho(q[11]), sd = arr(exp(q[1:10])),
                     residual_variance = exp(2 * q[12])))
}
for (nm in c("crossed_ar1_reml", "crossed_ar1_ml", "sleepstudy_cs_reml", "sleepstudy_cs_ml")) {
  stopifnot(abs(ref$cases[[nm]]$dense_check$logLik_at_glmmTMB_estimate -
                ref$cases[[nm]]$logLik_at_estimate) < 1e-5)
}

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"),
           file.path(out_dir, "reference.json"))
cat("wrote", file.path(out_dir, "reference.json"), "with", length(ref$cases), "cases\n")
