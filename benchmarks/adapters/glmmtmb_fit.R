# Fit one glmmTMB model on data written by benchmarks/adapters/lme4.py and print one JSON line.
# usage: Rscript glmmtmb_fit.R DIR FORMULA REML
# DIR holds data.csv (factor columns as 1-based level codes) and COLUMN.levels files (one
# level per line, in R's level order). Only the glmmTMB() call is timed; reading is not.
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
form <- as.formula(args[2])
reml <- as.logical(args[3])
suppressPackageStartupMessages(library(glmmTMB))

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
elapsed <- system.time(
  fit <- withCallingHandlers(glmmTMB(form, data = d, REML = reml), warning = keep_warning)
)[["elapsed"]]

conv <- fit$fit$convergence
if (conv != 0 || !isTRUE(fit$sdr$pdHess)) {
  warns <- c(warns, sprintf("convergence code %d (%s), pdHess %s", conv, fit$fit$message,
                            fit$sdr$pdHess))
}
esc <- function(s) gsub("[\r\n\t]", " ", gsub("([\"\\\\])", "\\\\\\1", s))
cat(sprintf(
  paste0(
    '{"fit_s": %.6f, "evals": %d, "loglik": %.12g, "glmmTMB": "%s", "TMB": "%s", ',
    '"R": "%s", "blas": "%s", "warnings": ["%s"]}\n'
  ),
  elapsed, as.integer(fit$fit$evaluations[["function"]]), -fit$fit$objective,
  as.character(packageVersion("glmmTMB")), as.character(packageVersion("TMB")),
  esc(paste(R.version$major, R.version$minor, sep = ".")), esc(La_library()),
  paste(vapply(unique(warns), esc, ""), collapse = '", "')
))
