## lme4 numbers for predict() with re.form subsets and with transformed terms on new data,
## and for formulas whose operators mean something else in Python (issue 14 §2-§4).
## R 4.2.2, lme4 1.1-31. Run from the repository root:
##   Rscript tests/reference/lme4_predict/make_reference.R
## Writes tests/reference/lme4_predict/reference.json. Tests never need R.
##
## Each case: `formula` (sparselme's spelling), `formula_r` (the one R fitted, when it
## differs), `data`, and the numbers. Stateful transforms that R recomputes on new data
## (scale(), and centring) are fitted in R on a column precomputed from the training data,
## and the new data get that column from the training mean and SD: the predictions a
## model built with center()/scale() must give.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

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
sleep <- load_data("sleepstudy")
pastes <- load_data("Pastes")
penicillin <- load_data("Penicillin")
cake <- load_data("cake")
head_n <- 8

out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))

## ---- §2: re.form keeps the named columns of a term --------------------------------------
re_form_case <- function(formula, data_name, data, re_forms) {
  m <- lmer(as.formula(formula), data)
  preds <- lapply(re_forms, function(rf) unname(head(predict(m, re.form = as.formula(rf)), head_n)))
  names(preds) <- re_forms
  list(formula = formula, data = data_name, predictions = preds)
}
out$re_form <- list(
  sleepstudy_rs = re_form_case("Reaction ~ Days + (Days | Subject)", "sleepstudy", sleep,
    c("~(1 | Subject)", "~(0 + Days | Subject)", "~(Days | Subject)")),
  sleepstudy_double_bar = re_form_case("Reaction ~ Days + (Days || Subject)", "sleepstudy", sleep,
    c("~(1 | Subject)", "~(0 + Days | Subject)", "~(Days || Subject)")),
  pastes_nested = re_form_case("strength ~ 1 + (1 | batch/cask)", "Pastes", pastes,
    c("~(1 | batch)", "~(1 | cask:batch)", "~(1 | batch/cask)")),
  penicillin_crossed = re_form_case("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin",
    penicillin, c("~(1 | sample)", "~(1 | plate) + (1 | sample)"))
)

## ---- §3: transformed terms, predicted on new data ---------------------------------------
new_sleep <- data.frame(Days = c(0, 2.5, 4, 7.25, 9),
                        Subject = factor(c("308", "309", "372", "308", "335"),
                                         levels = levels(sleep$Subject)))
mean_days <- mean(sleep$Days)
sd_days <- sd(sleep$Days)
with_std <- function(d) transform(d, Days_c = Days - mean_days, Days_s = (Days - mean_days) / sd_days)
newdata_case <- function(formula, formula_r = formula) {
  m <- lmer(as.formula(formula_r), with_std(sleep))
  nd <- with_std(new_sleep)
  list(formula = formula, formula_r = formula_r, data = "sleepstudy",
       logLik = as.numeric(logLik(m)),
       conditional = unname(predict(m, newdata = nd)),
       population = unname(predict(m, newdata = nd, re.form = NA)))
}
out$newdata <- list(
  newdata = list(Days = new_sleep$Days, Subject = as.character(new_sleep$Subject)),
  cases = list(
    I_power = newdata_case("Reaction ~ Days + I(Days**2) + (1 | Subject)",
                           "Reaction ~ Days + I(Days^2) + (1 | Subject)"),
    log = newdata_case("Reaction ~ np.log(Days + 1) + (Days | Subject)",
                       "Reaction ~ log(Days + 1) + (Days | Subject)"),
    square = newdata_case("Reaction ~ np.square(Days) + (1 | Subject)",
                          "Reaction ~ I(Days^2) + (1 | Subject)"),
    poly = newdata_case("Reaction ~ poly(Days, 2) + (1 | Subject)"),
    bs = newdata_case("Reaction ~ bs(Days, 3) + (1 | Subject)",
                      "Reaction ~ splines::bs(Days, 3) + (1 | Subject)"),
    center = newdata_case("Reaction ~ center(Days) + (center(Days) | Subject)",
                          "Reaction ~ Days_c + (Days_c | Subject)"),
    scale = newdata_case("Reaction ~ scale(Days) + (1 | Subject)",
                         "Reaction ~ Days_s + (1 | Subject)")
  )
)

## ---- §4: operators whose Python meaning differs ----------------------------------------
formula_case <- function(formula, data_name, data, formula_r = formula) {
  m <- lmer(as.formula(formula_r), data)
  list(formula = formula, formula_r = formula_r, data = data_name,
       logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
       fitted_head = unname(head(fitted(m), head_n)))
}
out$formulas <- list(
  caret_in_I = formula_case("Reaction ~ Days + I(Days^2) + (1 | Subject)", "sleepstudy", sleep),
  caret_in_call = formula_case("Reaction ~ log(Days^2 + 1) + (1 | Subject)", "sleepstudy", sleep,
                               "Reaction ~ log(Days^2 + 1) + (1 | Subject)"),
  caret_response = formula_case("Reaction^2 ~ Days + (1 | Subject)", "sleepstudy", sleep),
  caret_crossing = formula_case("angle ~ (recipe + temperature)^2 + (1 | recipe:replicate)",
                                "cake", cake),
  in_operator = formula_case("angle ~ temp %in% recipe + (1 | recipe:replicate)",
                             "cake", cake)
)

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/reference/lme4_predict/reference.json")
