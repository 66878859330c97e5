# lme4 fits of the data of statsmodels' test_lme.py cases that the conformance run leaves
# out because statsmodels ends elsewhere. Run from the repository root:
#   Rscript tests/reference/statsmodels_suite/make_reference.R
suppressPackageStartupMessages(library(lme4))
library(jsonlite)
here <- "tests/reference/statsmodels_suite"

# test_singular: Y ~ X with a random intercept per class (3 levels), REML
d <- read.csv(file.path(here, "singular.csv"))
d$class <- factor(d$class)
m <- lmer(Y ~ X + (1 | class), data = d, REML = TRUE)
vc <- as.data.frame(VarCorr(m))
out <- list(
  singular = list(
    formula = "Y ~ X + (1 | class)", REML = TRUE, lme4 = as.character(packageVersion("lme4")),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    class_variance = vc$vcov[1], residual_variance = vc$vcov[2],
    logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
    isSingular = isSingular(m)
  )
)
write_json(out, file.path(here, "reference.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
