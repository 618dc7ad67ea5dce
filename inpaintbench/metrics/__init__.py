"""Metrics: pixel (PSNR/SSIM/L1), LPIPS, Inception features, FID/KID/IDS and the MetricSuite."""
