"""Overrides of config/train.yaml for a training run of seconds on the CPU (tests only)."""

TINY = [
    "device=cpu", "network.width=8", "network.channels=8", "network.renderer_levels=1",
    "natural.batch_size=4", "natural.crop=32", "natural.val_max_side=64", "sim.enabled=false",
    "real.enabled=false",
    "optim.warmup_steps=2", "optim.lr=3e-3", "schedule.log_every=1", "schedule.val_every=1000",
    "schedule.checkpoint_every=1000", "schedule.lr_follows_budget=false",
]
