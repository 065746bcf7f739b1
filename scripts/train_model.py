"""Rule train_model: train one run, writing its checkpoints and log (rules train_model_<run>) (wordlens.stages.training.train_model)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import training, setup  # noqa: E402

setup(snakemake)
o, p = snakemake.output, snakemake.params
training.train_model(
    run=p.run, run_cfg=p.run_cfg, train_set=p.train_set, test_set=p.test_set,
    checkpoint_dir=p.checkpoint_dir, log=o.log, device=p.device,
)
