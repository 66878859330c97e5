# Fit one glmmTMB model on data written by benchmarks/adapters/lme4.py and print one JSON line.
# usage: Rscript glmmtmb_fit.R DIR FORMULA REML [WARM]
# DIR is read by bench_data.R. Only the glmmTMB() call is timed; reading is not. With
# WARM = TRUE the model is fitted once, untimed, before the timed fit (a warm process).
suppressPackageStartupMessages(library(glmmTMB))
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "bench_data.R"))  # dir, form, reml and the data d

if (warm) invisible(suppressWarnings(glmmTMB(form, data = d, REML = reml)))
elapsed <- system.time(
  fit <- withCallingHandlers(glmmTMB(form, data = d, REML = reml), warning = keep_warning)
)[["elapsed"]]

conv <- fit$fit$convergence
if (conv != 0 || !isTRUE(fit$sdr$pdHess)) {
  warns <- c(warns, sprintf("convergence code %d (%s), pdHess %s", conv, fit$fit$message,
                            fit$sdr$pdHess))
}
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
