## Reference fits for sparselme's residual variance structures (sparselme.residual).
##
## R 4.2.2, nlme 3.1-162.  Run from the repository root:
##   Rscript tests/reference/nlme/make_reference.R
## It reads the bundled datasets (sparselme/datasets/data) and writes one JSON file per
## case into tests/reference/nlme/.  Tests never need R.
##
## Conventions of the JSON (see tests/test_residual.py):
## - `formula` is the lme4-style formula sparselme fits; `residual` names the structure.
## - `delta`: varIdent's standard-deviation ratios for every stratum level in R's factor
##   level order, divided by the first level's (nlme fixes the first level *appearing* in
##   the data at 1; sparselme fixes the first factor level), and `sigma` is then the
##   residual standard deviation of that first level.
## - `phi`: corAR1's correlation parameter.
## - `re_cov`: the random-effects covariance matrix (getVarCov), terms' columns in order.
suppressPackageStartupMessages({ library(nlme); library(jsonlite) })

data_dir <- "sparselme/datasets/data"
out_dir <- "tests/reference/nlme"
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

ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msMaxEval = 2000,
                   tolerance = 1e-10, msTol = 1e-12, returnObject = TRUE)

reference <- function(name, data_name, data, fixed, random, lme4_formula, residual,
                      weights = NULL, correlation = NULL, REML = TRUE, drop_rule = NULL,
                      stratum = NULL) {
  method <- if (REML) "REML" else "ML"
  args <- list(fixed = fixed, data = data, random = random, method = method, control = ctrl)
  if (!is.null(weights)) args$weights <- weights
  if (!is.null(correlation)) args$correlation <- correlation
  warned <- character(0)
  secs <- system.time(m <- withCallingHandlers(do.call(lme, args), warning = function(w) {
    warned <<- c(warned, conditionMessage(w)); invokeRestart("muffleWarning")
  }))[["elapsed"]]
  call <- paste0("lme(", deparse1(fixed), ", random = ", deparse1(random), ", data = ",
                 data_name, if (!is.null(drop_rule)) " (subset)" else "",
                 if (!is.null(weights)) paste0(", weights = varIdent(", deparse1(formula(weights)), ")") else "",
                 if (!is.null(correlation)) paste0(", correlation = corAR1(", deparse1(formula(correlation)), ")") else "",
                 ", method = \"", method, "\")")
  sigma <- m$sigma
  out <- list(
    name = name, data = data_name, formula = lme4_formula,
    residual = residual, REML = REML, nobs = nrow(data),
    nlme_call = call,
    nlme_warnings = warned,
    logLik = as.numeric(logLik(m)),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(vcov(m)))),
    re_cov = unname(matrix(as.numeric(getVarCov(m)), nrow(getVarCov(m)))),
    re_names = colnames(getVarCov(m)),
    nlme_seconds = secs
  )
  if (!is.null(drop_rule)) out$drop_rule <- drop_rule
  if (!is.null(stratum)) out$stratum <- stratum
  if (!is.null(stratum)) {
    d <- coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    lev <- levels(data[[stratum]])
    d <- d[lev] / d[lev[1]]
    sigma <- sigma * (coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)[lev[1]])
    out$delta <- as.list(d)
  }
  if (!is.null(correlation)) {
    out$phi <- unname(coef(m$modelStruct$corStruct, unconstrained = FALSE))
  }
  out$sigma <- unname(sigma)
  ## nlme's approximate 95% intervals (normal on log(delta) and log((1+phi)/(1-phi)))
  iv <- tryCatch(intervals(m, which = "var-cov"), error = function(e) NULL)
  if (!is.null(iv$corStruct)) out$phi_interval <- unname(iv$corStruct[1, c("lower", "upper")])
  if (!is.null(iv$varStruct) && rownames(iv$varStruct)[1] == levels(data[[stratum]])[2]) {
    out$delta_interval <- lapply(split(iv$varStruct[, c("lower", "upper")],
                                       rownames(iv$varStruct)), unlist, use.names = FALSE)
  }
  write_json(out, file.path(out_dir, paste0(name, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE)
  cat(sprintf("%-26s logLik %.6f  %.2f s %s\n", name, out$logLik, secs,
              paste(substr(warned, 1, 60), collapse = "; ")))
  invisible(m)
}

## ---- dietox: varIdent by treatment, AR(1) within pig --------------------------------
dietox <- load_data("dietox")
for (REML in c(TRUE, FALSE)) {
  sfx <- if (REML) "" else "_ml"
  reference(paste0("dietox_varident_ri", sfx), "dietox", dietox, Weight ~ Time, ~ 1 | Pig,
            "Weight ~ Time + (1 | Pig)", "VarIdent(Evit)",
            weights = varIdent(form = ~ 1 | Evit), REML = REML, stratum = "Evit")
  reference(paste0("dietox_ar1_ri", sfx), "dietox", dietox, Weight ~ Time, ~ 1 | Pig,
            "Weight ~ Time + (1 | Pig)", "AR1(Time, Pig)",
            correlation = corAR1(form = ~ Time | Pig), REML = REML)
}
reference("dietox_varident_rs", "dietox", dietox, Weight ~ Time, ~ Time | Pig,
          "Weight ~ Time + (Time | Pig)", "VarIdent(Cu)",
          weights = varIdent(form = ~ 1 | Cu), stratum = "Cu")
reference("dietox_ar1_rs", "dietox", dietox, Weight ~ Time, ~ Time | Pig,
          "Weight ~ Time + (Time | Pig)", "AR1(Time, Pig)",
          correlation = corAR1(form = ~ Time | Pig))

## dietox with gaps: weeks 5 and 6 dropped for pigs with an odd number, so those pigs have
## a gap of 3 weeks (nlme then uses corARMA(p = 1), whose correlation is phi^|dt|).
gaps <- dietox[!(dietox$Time %in% c(5, 6) & as.integer(as.character(dietox$Pig)) %% 2 == 1), ]
reference("dietox_gaps_ar1_ri", "dietox", gaps, Weight ~ Time, ~ 1 | Pig,
          "Weight ~ Time + (1 | Pig)", "AR1(Time, Pig)",
          correlation = corAR1(form = ~ Time | Pig),
          drop_rule = "Time in (5, 6) and int(Pig) odd")

## ---- sleepstudy: AR(1) within subject, varIdent by period ----------------------------
sleep <- load_data("sleepstudy")
sleep$Period <- factor(ifelse(sleep$Days <= 2, "d0_2", ifelse(sleep$Days <= 5, "d3_5", "d6_9")))
for (REML in c(TRUE, FALSE)) {
  sfx <- if (REML) "" else "_ml"
  reference(paste0("sleepstudy_ar1_rs", sfx), "sleepstudy", sleep, Reaction ~ Days,
            ~ Days | Subject, "Reaction ~ Days + (Days | Subject)", "AR1(Days, Subject)",
            correlation = corAR1(form = ~ Days | Subject), REML = REML)
  reference(paste0("sleepstudy_varident_rs", sfx), "sleepstudy", sleep, Reaction ~ Days,
            ~ Days | Subject, "Reaction ~ Days + (Days | Subject)", "VarIdent(Period)",
            weights = varIdent(form = ~ 1 | Period), REML = REML, stratum = "Period")
}
reference("sleepstudy_ar1_ri", "sleepstudy", sleep, Reaction ~ Days, ~ 1 | Subject,
          "Reaction ~ Days + (1 | Subject)", "AR1(Days, Subject)",
          correlation = corAR1(form = ~ Days | Subject))

## ---- dietox-like simulated data (frozen to dietox_sim.csv): interior optima ----------
## 60 pigs x 12 weeks in 3 treatments; random intercepts and slopes (sd 4 and 0.6, corr 0.3).
## WeightAR has AR(1) errors (phi 0.6, sd 2.5), ~6% of the rows (not week 1) dropped, so
## gaps of several sizes occur; WeightVI has independent errors with sd 2.5 x (1, 1.4, 0.7)
## by treatment and no dropped rows (use rows with Keep == 1 for WeightAR).
set.seed(20240609)
npig <- 60; weeks <- 1:12
sim <- expand.grid(Time = weeks, Pig = sprintf("P%02d", seq_len(npig)))[, c("Pig", "Time")]
sim$Pig <- factor(sim$Pig)
trt <- factor(rep(c("Evit000", "Evit100", "Evit200"), length.out = npig))
sim$Evit <- trt[as.integer(sim$Pig)]
L <- chol(matrix(c(16, 0.3 * 4 * 0.6, 0.3 * 4 * 0.6, 0.36), 2))
b <- matrix(rnorm(2 * npig), npig) %*% L
mu <- 20 + 6.5 * sim$Time + b[sim$Pig, 1] + b[sim$Pig, 2] * sim$Time
ar <- unlist(lapply(seq_len(npig), function(i) arima.sim(list(ar = 0.6), 12, sd = 2.5 * sqrt(1 - 0.36))))
sim$WeightAR <- round(mu + ar, 6)
sim$WeightVI <- round(mu + rnorm(nrow(sim), sd = 2.5 * c(1, 1.4, 0.7)[as.integer(sim$Evit)]), 6)
sim$Keep <- as.integer(sim$Time == 1 | runif(nrow(sim)) > 0.06)
write.csv(sim, file.path(out_dir, "dietox_sim.csv"), row.names = FALSE)
sim <- read.csv(file.path(out_dir, "dietox_sim.csv"), stringsAsFactors = TRUE)
simar <- sim[sim$Keep == 1, ]
for (REML in c(TRUE, FALSE)) {
  sfx <- if (REML) "" else "_ml"
  reference(paste0("sim_ar1_rs", sfx), "dietox_sim", simar, WeightAR ~ Time, ~ Time | Pig,
            "WeightAR ~ Time + (Time | Pig)", "AR1(Time, Pig)",
            correlation = corAR1(form = ~ Time | Pig), REML = REML, drop_rule = "Keep == 0")
  reference(paste0("sim_varident_rs", sfx), "dietox_sim", sim, WeightVI ~ Time, ~ Time | Pig,
            "WeightVI ~ Time + (Time | Pig)", "VarIdent(Evit)",
            weights = varIdent(form = ~ 1 | Evit), REML = REML, stratum = "Evit")
}

## ---- no residual structure: nlme's and lme4's criteria agree (sanity of conventions) --
reference("sleepstudy_plain_rs", "sleepstudy", sleep, Reaction ~ Days, ~ Days | Subject,
          "Reaction ~ Days + (Days | Subject)", "none")
