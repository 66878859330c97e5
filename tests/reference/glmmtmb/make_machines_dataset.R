## Writes the bundled Machines dataset (nlme 3.1-162) in the format of the other bundled
## datasets: sparselme/datasets/data/Machines.csv.gz (R's rows and columns) and
## Machines.meta.json (column types and R's factor levels; Worker is an ordered factor in
## nlme, with levels ordered by mean score).  Run from the repository root:
##   Rscript tests/reference/glmmtmb/make_machines_dataset.R
suppressPackageStartupMessages(library(jsonlite))
data(Machines, package = "nlme")
d <- as.data.frame(Machines)
attributes(d) <- attributes(d)[c("names", "row.names", "class")]
meta <- list(dataset = "Machines", nrow = nrow(d), columns = lapply(names(d), function(n) {
  x <- d[[n]]
  if (is.factor(x)) list(name = n, type = if (is.ordered(x)) "ordered" else "factor",
                         levels = I(levels(x)))
  else list(name = n, type = "numeric")
}))
out <- "sparselme/datasets/data"
con <- gzfile(file.path(out, "Machines.csv.gz"), "w", compression = 9)
write.csv(d, con, row.names = FALSE)
close(con)
writeLines(toJSON(meta, auto_unbox = TRUE, pretty = TRUE), file.path(out, "Machines.meta.json"))
cat("wrote", file.path(out, "Machines.csv.gz"), "and Machines.meta.json\n")
