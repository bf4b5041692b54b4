"""Make the configured model usable offline: convert the embedded GGUF, or check a hub model is cached."""

import time
from pathlib import Path

from prosv.jobs import log, start_job
from prosv.models import EMBEDDED_MODELS, ModelNotAvailable, prepare_embedded_model, resolve_model

start_job(snakemake)
name = snakemake.params.model
t0 = time.time()
if name in EMBEDDED_MODELS:
    path = prepare_embedded_model(name)
else:
    from transformers import AutoConfig

    ref = resolve_model(name)
    try:
        AutoConfig.from_pretrained(ref.location)
    except OSError as err:
        raise ModelNotAvailable(f"model {name!r} ({ref.location}) is not available: {str(err).splitlines()[0]}. "
                                f"Give a local folder as 'model' in the config, or fill the Hugging Face cache.")
    path = ref.location
log.info("model %s ready at %s (%.1f s)", name, path, time.time() - t0)
Path(snakemake.output.flag).write_text(f"{path}\n")
