# Fit one lme4 model on data written by benchmarks/adapters/lme4.py and print one JSON line.
# usage: Rscript lme4_fit.R DIR FORMULA REML [WARM]
# DIR holds data.csv (factor columns as 1-based level codes) and COLUMN.levels files (one
# level per line, in R's level order). Only the lmer() call is timed; reading is not. With
# WARM = TRUE the model is fitted once, untimed, before the timed fit (a warm process).
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
form <- as.formula(args[2])
reml <- as.logical(args[3])
warm <- length(args) >= 4 && as.logical(args[4])
suppressPackageStartupMessages(library(lme4))

csv <- file.path(dir, "data.csv")
d <- if (requireNamespace("data.table", quietly = TRUE)) {
  as.data.frame(data.table::fread(csv, showProgress = FALSE))
} else {
  read.csv(csv)
}
for (f in list.files(dir, pattern = "\\.levels$")) {
  col <- sub("\\.levels$", "", f)
  lv <- readLines(file.path(dir, f), encoding = "UTF-8")
  d[[col]] <- structure(as.integer(d[[col]]), levels = lv, class = "factor")
}

warns <- character()
keep_warning <- function(w) {
  warns <<- c(warns, conditionMessage(w))
  invokeRestart("muffleWarning")
}
if (warm) invisible(suppressWarnings(lmer(form, data = d, REML = reml)))
elapsed <- system.time(
  fit <- withCallingHandlers(lmer(form, data = d, REML = reml), warning = keep_warning)
)[["elapsed"]]

# Time per deviance evaluation, measured after the fit at the optimum: repeated calls of the
# deviance function for about a second (at least 3 calls), fewer when a call is slow.
devfun <- update(fit, devFunOnly = TRUE)
theta <- getME(fit, "theta")
calls <- 0
start <- proc.time()[["elapsed"]]
repeat {
  devfun(theta)
  calls <- calls + 1
  spent <- proc.time()[["elapsed"]] - start
  if (calls >= 1000 || spent >= 10 || (calls >= 3 && spent >= 1)) break
}

esc <- function(s) gsub("[\r\n\t]", " ", gsub("([\"\\\\])", "\\\\\\1", s))
cat(sprintf(
  paste0(
    '{"fit_s": %.6f, "evals": %d, "s_per_eval": %.6g, "loglik": %.12g, "lme4": "%s", ',
    '"R": "%s", "blas": "%s", "warnings": ["%s"]}\n'
  ),
  elapsed, as.integer(fit@optinfo$feval), spent / calls, as.numeric(logLik(fit)),
  as.character(packageVersion("lme4")), esc(paste(R.version$major, R.version$minor, sep = ".")),
  esc(La_library()), paste(vapply(unique(warns), esc, ""), collapse = '", "')
))
