"""``python -m training CONFIG ...`` and ``torchrun --nproc-per-node N -m training CONFIG ...``."""

from training.cli import main

raise SystemExit(main())
