"""Evaluation: metrics (the one copy of PSNR/SSIM), eval-sim, eval-dynamics, replays, reports."""
