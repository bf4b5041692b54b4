"""Make the configured model usable offline: convert the embedded GGUF, or check a hub model is cached."""

import time

from prosv.files import write_text
from prosv.jobs import log, start_job
from prosv.models import ensure_available

start_job(snakemake)
t0 = time.time()
path = ensure_available(snakemake.params.model)
log.info("model %s ready at %s (%.1f s)", snakemake.params.model, path, time.time() - t0)
write_text(snakemake.output.flag, f"{path}\n")
