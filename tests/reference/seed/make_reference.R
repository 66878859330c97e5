# lme4 fits of the generated seed data (tests/seed_data.py writes
# income.csv with all 17 digits). Run from the repository root:
#   Rscript tests/reference/seed/make_reference.R
suppressMessages({library(lme4); library(jsonlite)})
income <- read.csv("tests/reference/seed/income.csv")
income$major <- factor(income$major)  # sorted levels, as patsy's reference level
fit <- function(formula, REML) {
  m <- lmer(formula, income, REML = REML,
            control = lmerControl(optimizer = "bobyqa"))
  list(formula = deparse(formula), REML = REML, logLik = as.numeric(logLik(m)),
       fixef = as.list(fixef(m)), theta = unname(getME(m, "theta")),
       sigma = sigma(m), singular = isSingular(m),
       varcorr = as.data.frame(VarCorr(m)))
}
out <- list(
  income_rs = fit(income ~ years_education * major + (years_education | person), TRUE),
  income_rs_ml = fit(income ~ years_education * major + (years_education | person), FALSE),
  lme4_version = as.character(packageVersion("lme4"))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/seed/income.json")
