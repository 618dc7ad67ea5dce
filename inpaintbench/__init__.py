"""inpaintbench: honest, fast evaluation of image inpainting models."""
__version__ = "0.1.0"
