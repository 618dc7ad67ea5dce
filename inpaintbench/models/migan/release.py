"""Facts about the official MI-GAN release that both the registry and the checkpoint reader cite
(a leaf module: no torch, no imports of this package)."""

from __future__ import annotations

#: the authors' Google Drive folder with the released checkpoints (linked from Picsart-AI-Research/MI-GAN)
DRIVE = "https://drive.google.com/drive/folders/1xNtvN2lto0p5yFKOEEg9RioMjGrYM74w"
