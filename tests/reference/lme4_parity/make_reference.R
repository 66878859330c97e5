## Reference numbers for lme4 parity: re.form subsets, stateful transforms in predict,
## formula syntax, random-term order, diagnostics, refits and tests, summary pieces.
##
## R 4.2.2, lme4 1.1-31, lmerTest 3.1-3.  Run from the repository root:
##   Rscript tests/reference/lme4_parity/make_reference.R
## It reads the bundled datasets (sparselme/datasets/data), writes two small simulated
## data sets next to itself (term_order.csv, rstyle_names.csv; the fits read them back from
## the CSV so that the CSV is exactly what was fitted) and writes
## tests/reference/lme4_parity/reference.json.  Tests never need R.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
stopifnot(requireNamespace("lmerTest", quietly = TRUE))
## lmerTest is not attached: every fit below is an lme4 `lmerMod`, so that drop1/anova are
## lme4's methods; lmerTest's are called on as_lmerModLmerTest(m) explicitly.

out_dir <- "tests/reference/lme4_parity"
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

## ---- JSON helpers: arrays stay arrays (I()), named vectors become objects -------------
arr <- function(x) I(if (is.null(x)) character(0) else unname(as.vector(x)))
named <- function(x) as.list(x)
mat <- function(x) unname(as.matrix(x))
cols <- function(df) {                       # a data frame as {column: array}
  df <- as.data.frame(df)
  res <- lapply(df, function(x) arr(if (is.factor(x)) as.character(x) else x))
  if (!is.null(rownames(df)) && !identical(rownames(df), as.character(seq_len(nrow(df)))))
    res <- c(list(rownames = arr(rownames(df))), res)
  res
}
## evaluate, keeping the value, the warnings and the messages; errors become $error
capture <- function(expr) {
  warn <- character(0); msg <- character(0)
  val <- tryCatch(withCallingHandlers(expr,
    warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msg <<- c(msg, conditionMessage(m)); invokeRestart("muffleMessage") }),
    error = function(e) structure(list(message = conditionMessage(e)), class = "captured_error"))
  list(value = val, warnings = arr(warn), messages = arr(trimws(msg)),
       error = if (inherits(val, "captured_error")) val$message else NULL)
}
varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(grp = arr(vc$grp), var1 = arr(vc$var1), var2 = arr(vc$var2), vcov = arr(vc$vcov),
       sdcor = arr(vc$sdcor))
}
fit_info <- function(m, data_name) {
  list(data = data_name, formula = deparse1(m@call$formula),
       formula_expanded = deparse1(formula(m)), REML = isREML(m), nobs = nobs(m),
       fixef = named(fixef(m)), fixef_names = arr(names(fixef(m))),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
       theta = arr(getME(m, "theta")), theta_names = arr(names(getME(m, "theta"))),
       sigma = sigma(m), varcorr = varcorr(m), singular = isSingular(m),
       lme4_messages = arr(m@optinfo$conv$lme4$messages))
}
## the fixed-effects model matrix R builds for new rows (terms' predvars: training bases)
newdata_X <- function(m, newdata) {
  tt <- delete.response(terms(m))
  X <- model.matrix(tt, model.frame(tt, newdata, na.action = na.pass),
                    contrasts.arg = attr(getME(m, "X"), "contrasts"))
  list(colnames = arr(colnames(X)), rows = mat(X))
}
re_form_label <- function(rf) if (is.null(rf)) "NULL" else deparse1(rf)

ref <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  cases = list())

sleep <- load_data("sleepstudy")
pastes <- load_data("Pastes")
pen <- load_data("Penicillin")
cake <- load_data("cake")
dietox <- load_data("dietox")
machines <- load_data("Machines")
nlme_machines <- as.data.frame(nlme::Machines)
stopifnot(isTRUE(all.equal(machines, nlme_machines, check.attributes = FALSE)),
          identical(levels(machines$Worker), levels(nlme_machines$Worker)))

## ======================================================================================
## (a) predict() with re.form: all fitted rows and new rows (allow.new.levels = TRUE)
## ======================================================================================
predict_case <- function(m, data_name, re_forms, newdata) {
  out <- fit_info(m, data_name)
  labels <- vapply(re_forms, re_form_label, "")
  out$re_forms <- arr(labels)
  out$predict_fitted <- setNames(lapply(re_forms, function(rf) arr(predict(m, re.form = rf))),
                                 labels)
  out$newdata <- cols(newdata)
  out$predict_newdata <- setNames(lapply(re_forms, function(rf)
    arr(predict(m, newdata, re.form = rf, allow.new.levels = TRUE))), labels)
  ## NA and ~0 are the same request in lme4
  stopifnot(isTRUE(all.equal(predict(m, re.form = NA), predict(m, re.form = ~0))))
  out
}
new_sleep <- data.frame(Days = c(0, 3.5, 9, 12, 2, 5),
                        Subject = c("308", "333", "372", "308", "999", "1000"))
m_rs <- lmer(Reaction ~ Days + (Days | Subject), sleep)
ref$cases$predict_sleepstudy_rs <- predict_case(m_rs, "sleepstudy",
  list(NULL, ~0, ~(1 | Subject), ~(0 + Days | Subject), ~(Days | Subject)), new_sleep)
m_ind <- lmer(Reaction ~ Days + (Days || Subject), sleep)
ref$cases$predict_sleepstudy_indep <- predict_case(m_ind, "sleepstudy",
  list(NULL, ~0, ~(1 | Subject), ~(0 + Days | Subject), ~(Days || Subject)), new_sleep)
ref$cases$predict_sleepstudy_indep$formula <- "Reaction ~ Days + (Days || Subject)"
m_nest <- lmer(strength ~ 1 + (1 | batch / cask), pastes)
new_pastes <- data.frame(batch = c("A", "B", "J", "K", "C", "K"),
                         cask = c("a", "c", "b", "a", "d", "d"))
ref$cases$predict_pastes_nested <- predict_case(m_nest, "Pastes",
  list(NULL, ~0, ~(1 | batch), ~(1 | cask:batch), ~(1 | batch / cask)), new_pastes)
m_cross <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen)
new_pen <- data.frame(plate = c("a", "b", "x", "a", "zz", "zz"),
                      sample = c("A", "F", "B", "new", "C", "new"))
ref$cases$predict_penicillin_crossed <- predict_case(m_cross, "Penicillin",
  list(NULL, ~0, ~(1 | plate), ~(1 | sample)), new_pen)

## re.form spellings: bars without parentheses and a formula in parentheses
spell <- function(m, rf_text) {
  r <- capture(predict(m, re.form = eval(str2lang(rf_text))))
  list(re_form = rf_text, error = r$error,
       fitted = if (is.null(r$error)) arr(r$value) else NULL)
}
ref$cases$re_form_spellings <- list(
  note = paste("predict(m, re.form = <re_form>) on the fitted rows; `error` is lme4's",
               "message where it refuses the spelling"),
  sleepstudy_rs = list(formula = deparse1(formula(m_rs)), results = list(
    spell(m_rs, "~1 | Subject"), spell(m_rs, "(~1 | Subject)"), spell(m_rs, "~(1 | Subject)"),
    spell(m_rs, "~Days | Subject"))),
  pastes_nested = list(formula = deparse1(formula(m_nest)), results = list(
    spell(m_nest, "~(1 | batch/cask)"), spell(m_nest, "~(1 | batch:cask)"),
    spell(m_nest, "~1 | batch"))),
  penicillin_crossed = list(formula = deparse1(formula(m_cross)), results = list(
    spell(m_cross, "(~1 | sample)"), spell(m_cross, "~1 | plate"))))

## ======================================================================================
## (b) transformed fixed effects: fit, predict(newdata) with the training data's bases
## ======================================================================================
new_days <- data.frame(Days = c(0, 2.5, 5, 9, 12, 1),
                       Subject = c("308", "309", "310", "350", "372", "999"))
transform_case <- function(m, data_name, newdata, new_levels_note) {
  out <- fit_info(m, data_name)
  out$predvars <- deparse1(attr(terms(m), "predvars"))
  out$newdata <- cols(newdata)
  out$newdata_note <- new_levels_note
  cond <- capture(predict(m, newdata, allow.new.levels = TRUE))
  popl <- capture(predict(m, newdata, re.form = NA))
  xnew <- capture(newdata_X(m, newdata))
  stopifnot(is.null(cond$error), is.null(popl$error), is.null(xnew$error))
  out$predict_conditional <- arr(cond$value)
  out$predict_population <- arr(popl$value)
  out$predict_warnings <- arr(unique(c(cond$warnings, popl$warnings)))
  out$X_newdata <- xnew$value
  stopifnot(isTRUE(all.equal(unname(drop(xnew$value$rows %*% fixef(m))),
                             unname(popl$value))))
  out
}
transforms <- list(
  quadratic_I = Reaction ~ Days + I(Days^2) + (1 | Subject),
  log = Reaction ~ log(Days + 1) + (1 | Subject),
  poly = Reaction ~ poly(Days, 2) + (1 | Subject),
  poly_raw = Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject),
  scale = Reaction ~ scale(Days) + (1 | Subject),
  center = Reaction ~ scale(Days, scale = FALSE) + (1 | Subject),
  ns = Reaction ~ splines::ns(Days, 3) + (1 | Subject),
  bs = Reaction ~ splines::bs(Days, 3) + (1 | Subject),
  sqrt_exp = Reaction ~ sqrt(Days + 1) + exp(Days / 10) + (1 | Subject))
for (nm in names(transforms)) {
  m <- eval(bquote(lmer(.(transforms[[nm]]), sleep)))
  ref$cases[[paste0("transform_", nm)]] <- transform_case(
    m, "sleepstudy", new_days, "Subject 999 is not in the data (allow.new.levels = TRUE)")
}
ref$cases$transform_center$sparselme_spelling <- "Reaction ~ center(Days) + (1 | Subject)"
m_cake <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake)
new_cake <- data.frame(recipe = c("A", "C", "B", "A", "B", "C"),
                       replicate = c("1", "15", "99", "3", "7", "99"),
                       temperature = c("185", "225", "205", "175", "215", "195"))
ref$cases$transform_cake_contrasts <- transform_case(
  m_cake, "cake", new_cake,
  "temperature is ordered (polynomial contrasts); replicate 99 is new (allow.new.levels = TRUE)")
ref$cases$transform_cake_contrasts$contrasts <- lapply(
  attr(getME(m_cake, "X"), "contrasts"), function(x) if (is.character(x)) x else mat(x))

## ======================================================================================
## (c) formula syntax
## ======================================================================================
syntax_case <- function(call_text, data_name, data, extra = NULL) {
  env <- list2env(list(d = data), parent = globalenv())
  r <- capture(eval(str2lang(call_text), env))
  out <- list(call = call_text, error = r$error, warnings = r$warnings, messages = r$messages)
  if (!is.null(r$error)) return(c(out, list(data = data_name)))
  out <- c(out, fit_info(r$value, data_name))
  if (!is.null(extra)) out <- c(out, extra(r$value))
  out
}
ref$cases$syntax_bar_no_parens_intercept <- syntax_case(
  "lmer(Reaction ~ 1 | Subject, d)", "sleepstudy", sleep)
ref$cases$syntax_bar_no_parens_slope <- syntax_case(
  "lmer(Reaction ~ Days | Subject, d)", "sleepstudy", sleep)
ref$cases$syntax_bar_no_parens_log_response <- syntax_case(
  "lmer(log(Reaction) ~ Days | Subject, d)", "sleepstudy", sleep)
ref$cases$syntax_bar_no_parens_sum <- syntax_case(
  "lmer(Reaction ~ (Days + I(Days^2)) | Subject, d)", "sleepstudy", sleep)
ref$cases$syntax_log_response <- syntax_case(
  "lmer(log(Reaction) ~ Days + (Days | Subject), d)", "sleepstudy", sleep)
new_off <- data.frame(Days = c(0, 2.5, 12, 4), Subject = c("308", "335", "372", "999"))
ref$cases$syntax_offset <- syntax_case(
  "lmer(Reaction ~ Days + offset(Days * 2) + (1 | Subject), d)", "sleepstudy", sleep,
  function(m) list(newdata = cols(new_off),
                   predict_conditional = arr(predict(m, new_off, allow.new.levels = TRUE)),
                   predict_population = arr(predict(m, new_off, re.form = NA)),
                   fitted_head = arr(head(fitted(m), 10))))
ref$cases$syntax_dot <- syntax_case(
  "lmer(Reaction ~ . - Subject + (1 | Subject), d)", "sleepstudy (columns Reaction, Days, Subject)",
  sleep[, c("Reaction", "Days", "Subject")])
## dummy(), 0 + f and f - 1 in random terms (Machines: 6 workers x 3 machines x 3 reps)
machine_extra <- function(m) list(
  ranef_Worker = c(list(levels = arr(rownames(ranef(m)$Worker))),
                   lapply(ranef(m)$Worker, arr)))
ref$cases$syntax_dummy_machines <- syntax_case(
  "lmer(score ~ Machine + (0 + dummy(Machine, \"B\") | Worker), d)", "Machines", machines,
  machine_extra)
ref$cases$syntax_zero_plus_factor_machines <- syntax_case(
  "lmer(score ~ Machine + (0 + Machine | Worker), d)", "Machines", machines, machine_extra)
ref$cases$syntax_factor_minus_one_machines <- syntax_case(
  "lmer(score ~ Machine + (Machine - 1 | Worker), d)", "Machines", machines, machine_extra)
ref$cases$syntax_nested_machines <- syntax_case(
  "lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), d)", "Machines", machines)

## R-style names: simulated, written beside this script and read back
set.seed(1707)
ng <- 8; per <- 6
rs <- data.frame(g = rep(sprintf("g%d", seq_len(ng)), each = per), x.1 = round(rnorm(ng * per), 4),
                 check.names = FALSE)
rs[["x 2"]] <- round(runif(ng * per), 4)
rs$Petal.Width <- round(1 + 0.5 * rs$x.1 - 0.3 * rs[["x 2"]] +
                        rep(rnorm(ng, sd = 0.4), each = per) + rnorm(ng * per, sd = 0.3), 4)
write.csv(rs, file.path(out_dir, "rstyle_names.csv"), row.names = FALSE)
rs <- read.csv(file.path(out_dir, "rstyle_names.csv"), check.names = FALSE)
rs$g <- factor(rs$g)
ref$cases$syntax_rstyle_names <- syntax_case(
  "lmer(Petal.Width ~ x.1 + (1 | g), d)", "rstyle_names.csv", rs)
ref$cases$syntax_backtick_names <- syntax_case(
  "lmer(Petal.Width ~ x.1 + `x 2` + (1 | g), d)", "rstyle_names.csv", rs)

## ======================================================================================
## (d) random-effects term order on ties of the number of levels
## ======================================================================================
set.seed(1717)
to <- expand.grid(rep = 1:4, b = sprintf("b%d", 1:5), a = sprintf("a%d", 1:5))[, c("a", "b")]
to$c <- sprintf("c%02d", (seq_len(nrow(to)) * 7) %% 12 + 1)
to$x <- round(rnorm(nrow(to)), 4)
ea <- rnorm(5, sd = 1.0); eb <- rnorm(5, sd = 0.7); ec <- rnorm(12, sd = 0.5)
sa <- rnorm(5, sd = 0.8)                     # a random slope on x within a
to$y <- round(1 + (0.5 + sa[as.integer(factor(to$a))]) * to$x +
              ea[as.integer(factor(to$a))] + eb[as.integer(factor(to$b))] +
              ec[as.integer(factor(to$c))] + rnorm(nrow(to), sd = 0.6), 4)
write.csv(to, file.path(out_dir, "term_order.csv"), row.names = FALSE)
to <- read.csv(file.path(out_dir, "term_order.csv"), stringsAsFactors = TRUE)
order_case <- function(f) {
  m <- eval(bquote(lmer(.(f), to)))
  vc <- as.data.frame(VarCorr(m))
  c(fit_info(m, "term_order.csv"), list(
    nlevels = lapply(getME(m, "flist"), nlevels),
    ranef_names = arr(names(ranef(m))),
    varcorr_grp_order = arr(vc$grp),
    flist_names = arr(names(getME(m, "flist"))),
    cnms = lapply(getME(m, "cnms"), arr),
    cnms_names = arr(names(getME(m, "cnms")))))
}
ref$cases$term_order_abc <- order_case(y ~ x + (1 | a) + (1 | b) + (1 | c))
ref$cases$term_order_bac <- order_case(y ~ x + (1 | b) + (1 | a) + (1 | c))
ref$cases$term_order_cab <- order_case(y ~ x + (1 | c) + (1 | a) + (1 | b))
ref$cases$term_order_acb <- order_case(y ~ x + (1 | a) + (1 | c) + (1 | b))
ref$cases$term_order_slope_tie <- order_case(y ~ x + (x | a) + (1 | b))
ref$cases$term_order_slope_tie_swapped <- order_case(y ~ x + (1 | b) + (x | a))

## ======================================================================================
## (e) diagnostics
## ======================================================================================
influence_fields <- function(inf) {
  nm <- names(inf)
  del <- grep("^fixed.effects\\[-", nm, value = TRUE)
  vdel <- grep("^var.cov.comps\\[-", nm, value = TRUE)
  list(groups = inf$groups, deleted = arr(as.character(inf$deleted)),
       fixef_names = arr(names(inf$fixed.effects)),
       fixed_effects_deleted = mat(inf[[del]]),
       var_cov_comps_names = arr(names(inf$var.cov.comps)),
       var_cov_comps = arr(inf$var.cov.comps),
       var_cov_comps_deleted = mat(inf[[vdel]]),
       dfbeta = mat(dfbeta(inf)),
       ## lme4 1.1-31's dfbetas() fails with one fixed effect ("non-conformable arrays")
       dfbetas = tryCatch(mat(dfbetas(inf)), error = function(e) NULL),
       cooks_distance = arr(cooks.distance(inf)),
       converged = arr(inf$converged), function_evals = arr(inf$function.evals))
}
diag_case <- function(m) {
  out <- fit_info(m, "sleepstudy")
  out$hatvalues <- arr(hatvalues(m))
  out$residuals <- list(response = arr(residuals(m, type = "response")),
                        pearson = arr(residuals(m, type = "pearson")),
                        working = arr(residuals(m, type = "working")),
                        deviance = arr(residuals(m, type = "deviance")),
                        scaled = arr(residuals(m, scaled = TRUE)))
  out$df_residual <- df.residual(m)
  out$cooks_distance <- arr(cooks.distance(m))
  out$rstudent <- arr(rstudent(m))
  out$influence_case <- influence_fields(influence(m, data = sleep))
  out$influence_subject <- influence_fields(influence(m, groups = "Subject", data = sleep))
  cf <- coef(m)$Subject
  out$coef_Subject <- c(list(levels = arr(rownames(cf))), lapply(cf, arr))
  out$ranef_Subject <- c(list(levels = arr(rownames(ranef(m)$Subject))),
                         lapply(ranef(m)$Subject, arr))
  out$predict_random_only <- arr(predict(m, random.only = TRUE))
  out$fitted <- arr(fitted(m))
  out
}
ref$cases$diagnostics_sleepstudy_reml <- diag_case(m_rs)
m_rs_ml <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE)
ref$cases$diagnostics_sleepstudy_ml <- diag_case(m_rs_ml)

sleep2 <- sleep; sleep2$Days2 <- 2 * sleep2$Days
rd <- capture(lmer(Reaction ~ Days + Days2 + (1 | Subject), sleep2))
ref$cases$rank_deficient <- c(fit_info(rd$value, "sleepstudy with Days2 = 2 * Days"), list(
  fit_messages = rd$messages, fit_warnings = rd$warnings,
  fixef_add_dropped = named(fixef(rd$value, add.dropped = TRUE)),
  fixef_add_dropped_names = arr(names(fixef(rd$value, add.dropped = TRUE)))))

## ======================================================================================
## (f) refits and tests
## ======================================================================================
newresp <- sleep$Reaction + 10 * sin(seq_len(nrow(sleep)))
m_refit <- refit(m_rs, newresp)
chk <- sleep; chk$Reaction <- newresp
m_fresh <- lmer(Reaction ~ Days + (Days | Subject), chk)
## lme4 1.1-31's refit() reports a REML criterion that its own deviance function does not
## give at its own theta (compare lme4 issue 316): the fresh fit is the reference.
ref$cases$refit_newresp <- c(fit_info(m_fresh, "sleepstudy with Reaction + 10 * sin(1:180)"),
  list(newresp = "Reaction + 10 * sin(1:180)", original_formula = deparse1(formula(m_rs)),
       note = paste("top-level fields: lmer() on the new response (the reference);",
                    "lme4_refit: what lme4's refit(m, newresp) reports"),
       lme4_refit = list(
         logLik = as.numeric(logLik(m_refit)), fixef = named(fixef(m_refit)),
         theta = arr(getME(m_refit, "theta")), sigma = sigma(m_refit),
         REMLcrit_fresh_devfun_at_refit_theta = as.function(m_fresh)(getME(m_refit, "theta")),
         REMLcrit_refit_devfun_at_refit_theta = as.function(m_refit)(getME(m_refit, "theta")))))
ref$cases$update_drop_days <- fit_info(update(m_rs, . ~ . - Days), "sleepstudy")
ref$cases$update_drop_days$update <- "update(lmer(Reaction ~ Days + (Days | Subject)), . ~ . - Days)"

table_fields <- function(tab) {
  tab <- as.data.frame(tab)
  c(list(rownames = arr(rownames(tab))), setNames(lapply(tab, arr), names(tab)),
    list(heading = arr(attr(tab, "heading"))))
}
m_q_ml <- lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleep, REML = FALSE)
ref$cases$drop1_lme4_chisq <- c(fit_info(m_q_ml, "sleepstudy"), list(
  call = "drop1(m, test = \"Chisq\")", table = table_fields(drop1(m_q_ml, test = "Chisq"))))
m_q <- lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleep)
ref$cases$drop1_lmerTest_satterthwaite <- c(fit_info(m_q, "sleepstudy"), list(
  call = "lmerTest drop1(m) (F tests, Satterthwaite ddf, type 3)",
  table = table_fields(drop1(lmerTest::as_lmerModLmerTest(m_q)))))
ranova_case <- function(m, data_name) {
  r <- capture(lmerTest::ranova(lmerTest::as_lmerModLmerTest(m)))
  c(fit_info(m, data_name), list(call = "lmerTest::ranova(m)", warnings_ranova = r$warnings,
                                 table = table_fields(r$value)))
}
ref$cases$ranova_sleepstudy_rs <- ranova_case(m_rs, "sleepstudy")
m_two <- lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep)
ref$cases$ranova_sleepstudy_two_terms <- ranova_case(m_two, "sleepstudy")
ref$cases$ranova_penicillin <- ranova_case(m_cross, "Penicillin")

m_small <- lmer(Reaction ~ Days + (1 | Subject), sleep)
m_big <- m_rs
a_named <- capture(anova(m_big, m_small, model.names = c("big", "small")))
a_symbols <- capture(anova(m_big, m_small))
a_keywords <- capture(anova(small = m_small, big = m_big))
ref$cases$anova_model_names <- list(
  data = "sleepstudy",
  models = list(small = deparse1(formula(m_small)), big = deparse1(formula(m_big))),
  note = paste("models given out of npar order; lme4 sorts rows by npar and refits REML",
               "fits with ML"),
  model_names_argument = list(call = "anova(m_big, m_small, model.names = c(\"big\", \"small\"))",
                              messages = a_named$messages, table = table_fields(a_named$value)),
  symbols = list(call = "anova(m_big, m_small)", messages = a_symbols$messages,
                 table = table_fields(a_symbols$value)),
  keyword_names = list(call = "anova(small = m_small, big = m_big)", error = a_keywords$error))

## ======================================================================================
## (g) summary pieces
## ======================================================================================
summary_case <- function(m, data_name) {
  s <- summary(m)
  q <- quantile(residuals(m, scaled = TRUE))
  st <- summary(lmerTest::as_lmerModLmerTest(m), ddf = "Satterthwaite")$coefficients
  c(fit_info(m, data_name), list(
    vcov = mat(vcov(m)),
    correlation_of_fixed_effects = mat(cov2cor(as.matrix(vcov(m)))),
    scaled_residual_quantiles = list(names = arr(c("Min", "1Q", "Median", "3Q", "Max")),
                                     values = arr(q)),
    summary_residuals_head = arr(head(s$residuals, 10)),
    satterthwaite = list(names = arr(rownames(st)), estimate = arr(st[, "Estimate"]),
                         se = arr(st[, "Std. Error"]), df = arr(st[, "df"]),
                         t = arr(st[, "t value"]), p = arr(st[, "Pr(>|t|)"]))))
}
ref$cases$summary_sleepstudy_rs <- summary_case(m_rs, "sleepstudy")
m_dx <- lmer(Weight ~ Time + (Time | Pig), dietox)
ref$cases$summary_dietox_rs <- summary_case(m_dx, "dietox")

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"),
           file.path(out_dir, "reference.json"))
cat("wrote", file.path(out_dir, "reference.json"), "with", length(ref$cases), "cases\n")

## ======================================================================================
## (h) diagnostics and methods on more designs (crossed, nested, weighted, factors):
##     written to methods.json, beside reference.json
## ===============================================================================
## ======================================================================================
meth <- list(versions = ref$versions, cases = list())
leverage_fields <- function(m) {
  list(hatvalues = arr(hatvalues(m)), cooks_distance = arr(cooks.distance(m)),
       rstudent = arr(rstudent(m)), fitted = arr(fitted(m)),
       residuals = list(response = arr(residuals(m, type = "response")),
                        pearson = arr(residuals(m, type = "pearson")),
                        scaled = arr(residuals(m, scaled = TRUE))),
       df_residual = df.residual(m))
}
coef_fields <- function(m) lapply(coef(m), function(cf)
  c(list(levels = arr(rownames(cf)), columns = arr(colnames(cf))), lapply(cf, arr)))
meth$cases$diagnostics_penicillin_crossed <- c(fit_info(m_cross, "Penicillin"),
  leverage_fields(m_cross), list(
    influence_sample = influence_fields(influence(m_cross, groups = "sample", data = pen)),
    coef = coef_fields(m_cross)))
m_nested <- lmer(strength ~ 1 + (1 | batch/cask), pastes)
meth$cases$diagnostics_pastes_nested <- c(fit_info(m_nested, "Pastes"),
  leverage_fields(m_nested))
sleep_w <- sleep; sleep_w$w <- 1 + (sleep_w$Days %% 3)
m_w <- lmer(Reaction ~ Days + (Days | Subject), sleep_w, weights = w)
meth$cases$diagnostics_sleepstudy_weighted <- c(
  fit_info(m_w, "sleepstudy with weights w = 1 + Days %% 3"),
  list(weights = "1 + Days %% 3"), leverage_fields(m_w))
m_noslope <- lmer(Reaction ~ 1 + (Days | Subject), sleep)
meth$cases$coef_random_slope_without_fixed_slope <- c(fit_info(m_noslope, "sleepstudy"),
  list(coef = coef_fields(m_noslope)))
m_cake_ml <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake, REML = FALSE)
meth$cases$drop1_cake_chisq <- c(fit_info(m_cake_ml, "cake"), list(
  call = "drop1(m, test = \"Chisq\")", table = table_fields(drop1(m_cake_ml, test = "Chisq"))))
m_cake <- lmer(angle ~ recipe + temperature + (1 | recipe:replicate), cake)
meth$cases$drop1_cake_main_effects_lmerTest <- c(fit_info(m_cake, "cake"), list(
  call = "lmerTest drop1(m)", table = table_fields(drop1(lmerTest::as_lmerModLmerTest(m_cake)))))
m_dye <- lmer(Yield ~ 1 + (1 | Batch), load_data("Dyestuff"))
meth$cases$ranova_dyestuff <- ranova_case(m_dye, "Dyestuff")
m_dye_ml <- lmer(Yield ~ 1 + (1 | Batch), load_data("Dyestuff"), REML = FALSE)
meth$cases$ranova_dyestuff_ml <- ranova_case(m_dye_ml, "Dyestuff")
m_q2 <- lmer(Reaction ~ Days + (Days + I(Days^2) | Subject), sleep)
meth$cases$ranova_two_slopes <- ranova_case(m_q2, "sleepstudy")
meth$cases$update_add_fixed <- c(fit_info(update(m_rs, . ~ . + I(Days^2)), "sleepstudy"),
  list(update = "update(lmer(Reaction ~ Days + (Days | Subject)), . ~ . + I(Days^2))"))
meth$cases$update_swap_random <- c(
  fit_info(update(m_rs, . ~ . - (Days | Subject) + (1 | Subject)), "sleepstudy"),
  list(update = "update(m, . ~ . - (Days | Subject) + (1 | Subject))"))

writeLines(toJSON(meth, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"),
           file.path(out_dir, "methods.json"))
cat("wrote", file.path(out_dir, "methods.json"), "with", length(meth$cases), "cases\n")
=======
## (i) printing, spline bases beyond the data, na.exclude: written to output_and_splines.json
## ======================================================================================
out2 <- list(versions = ref$versions, cases = list())
cake_o <- load_data("cake")
cake_o$temp <- as.numeric(as.character(cake_o$temperature))
m_cake_num <- lmer(angle ~ recipe * temp + (1 | recipe:replicate), cake_o)
m_cake_add <- lmer(angle ~ recipe + temperature + (1 | recipe:replicate), cake_o)
m_cake_int <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake_o)
print_case <- function(m, data_name) {  # print's message (p > 12) goes to summary_message
  msg <- capture.output(out <- capture.output(print(summary(m))), type = "message")
  c(fit_info(m, data_name), list(summary_lines = arr(out), summary_message = arr(msg)))
}
out2$cases$print_sleepstudy_rs <- print_case(m_rs, "sleepstudy")
out2$cases$print_cake_numeric <- print_case(m_cake_num, "cake with temp = temperature as a number")
out2$cases$print_cake_additive <- print_case(m_cake_add, "cake")
out2$cases$print_cake_interaction <- print_case(m_cake_int, "cake")  # p = 18 > 12
abbr_names <- c("(Intercept)", "Days", "recipeB", "temperature.L", "temperature^4",
                "recipeB:temperature.Q", "I(Days^2)", "log(Days + 1)", "x", "Petal.Width",
                "poly(Days, 2)1", "splines::bs(Days, 3)2", "AB CD", "Machine", "ab", "UPPER")
out2$cases$abbreviate <- list(names = arr(abbr_names),
                              minlength_6 = arr(abbreviate(abbr_names, minlength = 6)),
                              minlength_11 = arr(abbreviate(abbr_names, minlength = 11)))
sx <- c(0.5, 1, 1.2, 2, 3.3, 4, 4.1, 5, 6.5, 7, 8, 9.5, 10)
snew <- c(-3, -0.5, 0.5, 0.7, 4.5, 9, 10, 11, 15)
basis_case <- function(call_text) {
  b <- eval(parse(text = call_text), list(x = sx))
  list(call = call_text, basis = mat(b), predict_new = mat(suppressWarnings(predict(b, snew))),
       knots = arr(attr(b, "knots")), boundary_knots = arr(attr(b, "Boundary.knots")),
       colnames = arr(colnames(b)))
}
out2$cases$spline_bases <- list(
  x = arr(sx), new = arr(snew),
  bases = list(
    bs_df6 = basis_case("splines::bs(x, df = 6)"),
    bs_knots_deg2 = basis_case("splines::bs(x, knots = c(2, 5), degree = 2)"),
    bs_intercept = basis_case("splines::bs(x, df = 5, intercept = TRUE)"),
    ns_df5 = basis_case("splines::ns(x, df = 5)"),
    ns_knot_intercept = basis_case("splines::ns(x, knots = 3, intercept = TRUE)"),
    ns_boundary = basis_case("splines::ns(x, df = 4, Boundary.knots = c(1, 8))"),
    poly_3 = basis_case("poly(x, 3)")))
sleep_na <- sleep
sleep_na$Reaction[c(3, 50, 100)] <- NA
sleep_na$Days[7] <- NA
m_excl <- lmer(Reaction ~ Days + (Days | Subject), sleep_na, na.action = na.exclude)
m_omit <- lmer(Reaction ~ Days + (Days | Subject), sleep_na, na.action = na.omit)
out2$cases$na_action <- c(fit_info(m_excl, "sleepstudy with Reaction NA at rows 3, 50, 100 and Days NA at row 7"),
  list(missing_rows = arr(c(3, 7, 50, 100)),
       fitted_exclude = arr(fitted(m_excl)), residuals_exclude = arr(residuals(m_excl)),
       fitted_omit = arr(fitted(m_omit)), fitted_omit_names = arr(names(fitted(m_omit)))))
writeLines(toJSON(out2, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"),
           file.path(out_dir, "output_and_splines.json"))
cat("wrote", file.path(out_dir, "output_and_splines.json"), "with", length(out2$cases), "cases\n")
