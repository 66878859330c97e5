## Reference numbers for sparselme's inference and prediction tests.
##
## R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2.  Run from the repository root:
##   Rscript tests/reference/lmertest/make_reference.R
## It reads the bundled datasets (sparselme/datasets/data) and writes
## tests/reference/lmertest/inference.json.  Tests never need R.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)
})

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

na2str <- function(x) { x <- unname(x); if (is.numeric(x)) ifelse(is.na(x), "NA", x) else x }
coef_tab <- function(m, ddf) {
  ct <- summary(m, ddf = ddf)$coefficients
  list(names = rownames(ct), estimate = unname(ct[, "Estimate"]), se = unname(ct[, "Std. Error"]),
       df = unname(ct[, "df"]), t = unname(ct[, "t value"]), p = unname(ct[, "Pr(>|t|)"]))
}
anova_tab <- function(m, type, ddf) {
  a <- anova(m, type = type, ddf = ddf)
  list(terms = rownames(a), sumsq = unname(a[["Sum Sq"]]), meansq = unname(a[["Mean Sq"]]),
       numdf = unname(a[["NumDF"]]), dendf = unname(a[["DenDF"]]), F = unname(a[["F value"]]),
       p = unname(a[["Pr(>F)"]]))
}
inference_case <- function(m, data_name, rows = NULL) {
  m2 <- as_lmerModLmerTest(m)
  out <- list(data = data_name, formula = deparse1(formula(m)), REML = isREML(m),
              rows = rows, fixef = unname(fixef(m)), theta = unname(getME(m, "theta")),
              sigma = sigma(m),
              satterthwaite = coef_tab(m, "Satterthwaite"),
              vcov_varpar = unname(m2@vcov_varpar),
              jacobian = lapply(m2@Jac_list, function(J) unname(J)))
  if (isREML(m)) {
    out$kenward_roger <- coef_tab(m, "Kenward-Roger")
    out$vcov_adj <- unname(as.matrix(vcovAdj(m)))
  }
  out$anova <- list()
  for (type in c("3", "1")) for (ddf in c("Satterthwaite", if (isREML(m)) "Kenward-Roger")) {
    out$anova[[paste0("type", type, "_", ddf)]] <- anova_tab(m, type, ddf)
  }
  out
}

ref <- list()

## ---- Satterthwaite / Kenward-Roger / F tests -----------------------------------------
sleep <- load_data("sleepstudy")
ref$sleepstudy <- inference_case(lmer(Reaction ~ Days + (Days | Subject), sleep), "sleepstudy")
ref$sleepstudy_ml <- inference_case(
  lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE), "sleepstudy")
## unbalanced: drop every row whose (Days + subject index) is divisible by 4 (0-based rows kept)
keep <- which((sleep$Days + as.integer(sleep$Subject)) %% 4 != 0)
ref$sleepstudy_unbalanced <- inference_case(
  lmer(Reaction ~ Days + (Days | Subject), sleep[keep, ]), "sleepstudy", rows = keep - 1L)
dietox <- load_data("dietox")
ref$dietox_factors <- inference_case(
  lmer(Weight ~ Time * Cu + Evit + (Time | Pig), dietox), "dietox")
cake <- load_data("cake")
ref$cake <- inference_case(
  lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake), "cake")
pen <- load_data("Penicillin")
ref$penicillin <- inference_case(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen), "Penicillin")

## ---- likelihood-ratio tests -----------------------------------------------------------
m_int <- lmer(Reaction ~ Days + (1 | Subject), sleep)
m_cor <- lmer(Reaction ~ Days + (Days | Subject), sleep)
m_ind <- lmer(Reaction ~ Days + (Days || Subject), sleep)
a <- suppressMessages(anova(m_cor, m_int, m_ind))
ref$anova_sleepstudy <- list(
  models = c("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (1 | Subject)",
             "Reaction ~ Days + (Days || Subject)"),
  order = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
  deviance = a$deviance, Chisq = na2str(a$Chisq), Df = na2str(a$Df),
  p = na2str(a[["Pr(>Chisq)"]]))

## ---- profile and Wald intervals -------------------------------------------------------
ci_case <- function(m) {
  pr <- suppressMessages(confint(m, method = "profile", oldNames = FALSE))
  wa <- confint(m, method = "Wald", oldNames = FALSE)
  list(formula = deparse1(formula(m)), REML = isREML(m), names = rownames(pr),
       profile_lo = na2str(pr[, 1]), profile_hi = na2str(pr[, 2]),
       wald_lo = na2str(wa[, 1]), wald_hi = na2str(wa[, 2]))
}
dye <- load_data("Dyestuff")
ref$confint_dyestuff <- c(list(data = "Dyestuff"), ci_case(lmer(Yield ~ 1 + (1 | Batch), dye)))
ref$confint_penicillin <- c(list(data = "Penicillin"),
                            ci_case(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen)))
ref$confint_sleepstudy_ml <- c(list(data = "sleepstudy"),
  ci_case(lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE)))
ref$confint_sleepstudy_indep <- c(list(data = "sleepstudy"),
  ci_case(lmer(Reaction ~ Days + (Days || Subject), sleep)))

## ---- predictions ------------------------------------------------------------------------
mpen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen)
newpen <- data.frame(plate = c("a", "b", "x", "a"), sample = c("A", "F", "B", "new"))
ref$predict_penicillin <- list(
  data = "Penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
  newdata = newpen,
  conditional = unname(predict(mpen, newpen, allow.new.levels = TRUE)),
  plate_only = unname(predict(mpen, newpen, re.form = ~(1 | plate), allow.new.levels = TRUE)),
  population = unname(predict(mpen, newpen, re.form = NA)))
mdx <- lmer(Weight ~ Time * Cu + Evit + (Time | Pig), dietox)
newdx <- data.frame(Time = c(1, 5.5, 12, 3), Cu = c("Cu000", "Cu175", "Cu035", "Cu175"),
                    Evit = c("Evit200", "Evit000", "Evit100", "Evit100"),
                    Pig = c("4601", "8442", "0000", "4643"))
ref$predict_dietox <- list(
  data = "dietox", formula = "Weight ~ Time * Cu + Evit + (Time | Pig)", newdata = newdx,
  conditional = unname(predict(mdx, newdx, allow.new.levels = TRUE)),
  population = unname(predict(mdx, newdx, re.form = NA)))
mcake <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake)
newcake <- data.frame(recipe = c("A", "C", "B"), replicate = c("1", "15", "99"),
                      temperature = c("185", "225", "205"))
ref$predict_cake <- list(
  data = "cake", formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
  newdata = newcake,
  conditional = unname(predict(mcake, newcake, allow.new.levels = TRUE)),
  population = unname(predict(mcake, newcake, re.form = NA)))

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lmertest/inference.json")
cat("wrote tests/reference/lmertest/inference.json\n")
