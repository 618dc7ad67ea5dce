"""A diffusers inpainting pipeline as an :class:`~inpaintbench.models.base.Inpainter`.

Conventions (all recorded by :meth:`DiffusersInpainter.describe`):

* **Inputs**: the harness's uint8 images become float [0, 1] ``image`` arrays (the pipeline's image
  processor maps them to [-1, 1]); ``holes`` (True = missing) become ``mask_image`` with 1 = repaint, the
  polarity every diffusers inpainting pipeline uses. The output is the pipeline's ``output_type="np"``
  float32 [0, 1].
* **Prompt**: ``prompt`` defaults to the empty string (unconditional inpainting); ``steps``, ``guidance``
  and ``strength`` default to the pipeline's own defaults, which :meth:`describe` records as numbers.
* **Determinism**: each sample gets a CPU ``torch.Generator`` seeded with
  :func:`inpaintbench.models.seeding.sample_seed` of (run seed, sample id); the pipeline receives the
  list of generators, so every random draw of a sample (initial latents, the VAE posterior sample,
  ancestral scheduler noise) comes from its own generator, and the draws happen on CPU whatever the
  device. On CPU the samples go through the pipeline one at a time (``micro_batch`` None = 1 there), which
  makes results bit-identical whatever the batch; on CUDA the whole batch goes through at once and agrees
  with smaller batches to float rounding.
* **Sizes**: ``pad_multiple`` is 8 (the pipelines' height/width constraint; the lcm with the VAE scale
  factor, doubled for packed-latent Flux pipelines): the harness pads and crops.
* **Known region**: the VAE round-trip changes known pixels; the harness composites them back, as for every
  model. The safety checker is never loaded (it would black out flagged outputs and skew metrics).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models.diffusion.source import PipelineSource, check_inpainting, content_digest, hash_files, locate

PRECISIONS = ("fp32", "fp16", "bf16", "fp64")
#: short scheduler names accepted by ``scheduler=`` besides diffusers class names
SCHEDULER_ALIASES = {
    "ddim": "DDIMScheduler", "ddpm": "DDPMScheduler", "pndm": "PNDMScheduler", "lms": "LMSDiscreteScheduler",
    "euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
    "heun": "HeunDiscreteScheduler", "dpm++": "DPMSolverMultistepScheduler",
    "dpmpp": "DPMSolverMultistepScheduler", "unipc": "UniPCMultistepScheduler",
}
SEED_POLICY = ("per-sample CPU torch.Generator seeded with sample_seed(seed, sample id) = first 8 bytes (little "
               "endian, 63 bits) of sha256('mat-v1|<seed>|<sample id>'); the pipeline gets the list of generators; "
               "sample id = harness id, else sha256 of pixels+holes")
_INSTALL_FIX = "pip install inpaintbench[diffusers]  (diffusers and transformers)"


def _import_diffusers() -> Any:
    try:
        import diffusers
        import transformers  # noqa: F401  (every text-conditioned pipeline needs it)
    except ImportError as exc:
        raise InputError(f"model 'diffusers:...' needs the optional packages diffusers and transformers ({exc})",
                         _INSTALL_FIX) from None
    return diffusers


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence diffusers/transformers load chatter (progress bars, 'accelerate not found', the ``torch_dtype``
    rename of recent diffusers, which older ones, still supported, require) for the load only."""
    import warnings

    import diffusers
    import transformers

    libs = (diffusers.utils.logging, transformers.utils.logging)
    old = [(lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libs]
    for lib in libs:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            yield
    finally:
        for lib, (verbosity, bar) in zip(libs, old, strict=True):
            lib.set_verbosity(verbosity)
            if bar:
                lib.enable_progress_bar()


def _torch_dtype(precision: str) -> Any:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}[precision]


def _pipeline_class(diffusers: Any, src: PipelineSource) -> Any:
    """The inpainting class for this folder: its own class when that is an inpainting one, else the
    ``AutoPipelineForInpainting`` counterpart of a text-to-image/img2img class (same weights)."""
    name = src.class_name
    cls = getattr(diffusers, name, None)
    if cls is not None and "inpaint" in name.lower():
        return cls
    return diffusers.AutoPipelineForInpainting


class DiffusersInpainter:
    """Inference wrapper around a diffusers inpainting pipeline (module docstring: every convention)."""

    value_range = (0.0, 1.0)
    native_resolution: int | None = None

    def __init__(self, target: str, *, prompt: str = "", negative_prompt: str | None = None,
                 steps: int | None = None, guidance: float | None = None, strength: float | None = None,
                 scheduler: str | None = None, precision: str = "fp32", device: str | None = None,
                 cpu_offload: bool = False, seed: int = 0, micro_batch: int | None = None,
                 revision: str | None = None, variant: str | None = None, name: str | None = None):
        if precision not in PRECISIONS:
            raise InputError(f"diffusers: unknown precision {precision!r}", f"use one of {PRECISIONS}")
        if micro_batch is not None and (not isinstance(micro_batch, int) or micro_batch < 1):
            raise InputError("diffusers: micro_batch must be a positive integer", "pass e.g. -O micro_batch=4")
        for opt, value in (("steps", steps), ("guidance", guidance), ("strength", strength)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InputError(f"diffusers: option {opt} must be a number, got {value!r}", f"pass e.g. -O {opt}=20")
        if steps is not None and (steps < 1 or int(steps) != steps):
            raise InputError(f"diffusers: steps must be a positive integer, got {steps!r}", "pass e.g. -O steps=20")
        if strength is not None and not 0.0 < strength <= 1.0:
            raise InputError(f"diffusers: strength must be in (0, 1], got {strength!r}", "pass e.g. -O strength=1")
        diffusers = _import_diffusers()
        import torch

        self.source = locate(target, revision)
        check_inpainting(self.source)
        self.files = hash_files(self.source)
        self.name = name or f"diffusers:{target}"
        self.prompt = "" if prompt is None else str(prompt)
        self.negative_prompt = None if negative_prompt is None else str(negative_prompt)
        self.precision = precision
        self.seed = int(seed)
        self.micro_batch = micro_batch
        self.cpu_offload = bool(cpu_offload)
        self.variant = variant
        dev = torch.device(device) if device not in (None, "auto") else \
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.cpu_offload and dev.type != "cuda":
            raise InputError("diffusers: cpu_offload=true moves modules to the GPU one at a time; it needs a CUDA "
                             f"device, got {dev}", "drop cpu_offload, or run with --device cuda")
        if self.cpu_offload:
            try:
                import accelerate  # noqa: F401
            except ImportError:
                raise InputError("diffusers: cpu_offload=true needs the accelerate package",
                                 "pip install accelerate, or drop cpu_offload") from None
        self.device = dev
        scheduler_cls = self._scheduler_class(diffusers, scheduler)  # checked before gigabytes load
        self.pipe = self._load(diffusers)
        if scheduler_cls is not None:
            self.pipe.scheduler = scheduler_cls.from_config(self.pipe.scheduler.config)
        self.scheduler_name = type(self.pipe.scheduler).__name__
        self.call_args = self._call_args(steps, guidance, strength)
        self.pad_multiple = self._pad_multiple()

    # ------------------------------------------------------------------ loading

    def _load(self, diffusers: Any) -> Any:
        src = self.source
        cls = _pipeline_class(diffusers, src)
        kwargs: dict[str, Any] = {"torch_dtype": _torch_dtype(self.precision), "local_files_only": True}
        if "safety_checker" in src.index:
            # the Stable Diffusion family: its feature extractor only feeds the safety checker
            kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        if self.variant:
            kwargs["variant"] = self.variant
        try:
            with _quiet_libraries():
                pipe = cls.from_pretrained(str(src.path), **kwargs)
        except Exception as exc:  # third-party files at the boundary: one line with the fix, not a traceback
            text = str(exc).strip()
            msg = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            if cls is diffusers.AutoPipelineForInpainting and isinstance(exc, ValueError):
                raise InputError(f"diffusers: {src.path} ({src.class_name}) has no inpainting counterpart in "
                                 f"diffusers ({msg})", "use an inpainting pipeline (its class name contains "
                                 "Inpaint)") from None
            raise WeightsError(f"diffusers: cannot load {src.class_name} from {src.path} ({msg})",
                               "re-download the pipeline (an interrupted download leaves files missing) or check "
                               "the variant option") from None
        if "inpaint" not in type(pipe).__name__.lower():
            raise InputError(f"diffusers: {src.path} loads as {type(pipe).__name__}, not an inpainting pipeline",
                             "use an inpainting pipeline (its class name contains Inpaint)")
        pipe.set_progress_bar_config(disable=True)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        return pipe

    def _scheduler_class(self, diffusers: Any, scheduler: str | None) -> Any:
        """The class asked for by ``scheduler=`` (a diffusers class name or an alias), or None to keep the
        pipeline's own; it must be one the saved scheduler lists as compatible (same config keys)."""
        if scheduler is None:
            return None
        saved = self.source.index.get("scheduler") or [None, None]
        saved_cls = getattr(diffusers, str(saved[1]), None)
        compatible = sorted({c.__name__ for c in saved_cls._get_compatibles()} | {saved_cls.__name__}) \
            if saved_cls is not None and hasattr(saved_cls, "_get_compatibles") else []
        cls_name = SCHEDULER_ALIASES.get(str(scheduler).lower(), str(scheduler))
        cls = getattr(diffusers, cls_name, None)
        if cls is None or not hasattr(cls, "from_config") or (compatible and cls_name not in compatible):
            raise InputError(f"diffusers: scheduler {scheduler!r} cannot replace {saved[1]}",
                             f"use one of {', '.join(compatible) or 'the diffusers scheduler classes'} "
                             f"(or an alias: {', '.join(SCHEDULER_ALIASES)})")
        return cls

    def _call_args(self, steps: int | None, guidance: float | None, strength: float | None) -> dict[str, Any]:
        """Keyword arguments of every pipeline call; pipeline defaults are read from its signature and
        recorded, and an option the pipeline does not take is an error rather than silently ignored."""
        params = inspect.signature(self.pipe.__call__).parameters
        wanted = {"num_inference_steps": steps, "guidance_scale": guidance, "strength": strength}
        options = {"num_inference_steps": "steps", "guidance_scale": "guidance", "strength": "strength"}
        out: dict[str, Any] = {}
        for arg, value in wanted.items():
            if arg not in params:
                if value is not None:
                    raise InputError(f"diffusers: {type(self.pipe).__name__} has no {arg}",
                                     f"drop the option {options[arg]}")
                continue
            default = params[arg].default
            out[arg] = value if value is not None else (None if default is inspect.Parameter.empty else default)
        if out.get("num_inference_steps") is not None:
            out["num_inference_steps"] = int(out["num_inference_steps"])
        if self.negative_prompt is not None:
            if "negative_prompt" not in params:
                raise InputError(f"diffusers: {type(self.pipe).__name__} takes no negative_prompt",
                                 "drop the option negative_prompt")
        self._takes = set(params)
        return {k: v for k, v in out.items() if v is not None}

    def _pad_multiple(self) -> int:
        scale = int(getattr(self.pipe, "vae_scale_factor", 8) or 8)
        if type(self.pipe).__name__.startswith("Flux"):
            scale *= 2  # 2x2 latent patches are packed into tokens
        return math.lcm(8, scale)

    # ------------------------------------------------------------------ inference

    def _generators(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None) -> list[Any]:
        import torch

        from inpaintbench.models.seeding import content_id, sample_seed

        gens = []
        for i in range(images.shape[0]):
            sid = ids[i] if ids is not None else content_id(images[i], holes[i])
            gens.append(torch.Generator(device="cpu").manual_seed(sample_seed(self.seed, str(sid))))
        return gens

    def _check(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None) -> None:
        from inpaintbench.models.base import check_inpaint_batch

        check_inpaint_batch(self.name, images, holes, ids)
        h, w = images.shape[1:3]
        if h % self.pad_multiple or w % self.pad_multiple:
            raise InputError(f"{self.name}: height and width must be multiples of {self.pad_multiple}, got {w}x{h}",
                             "pad the images (the inpaintbench harness does this itself)")

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        import torch

        self._check(images, holes, ids)
        gens = self._generators(images, holes, ids)
        img = images.astype(np.float32) / np.float32(255.0)
        mask = holes.astype(np.float32)[..., None]  # 1 = repaint, the diffusers polarity
        h, w = images.shape[1:3]
        step = self.micro_batch or (images.shape[0] if self.device.type == "cuda" else 1)
        outs = []
        with torch.inference_mode():
            for s in range(0, images.shape[0], step):
                n = min(step, images.shape[0] - s)
                kwargs: dict[str, Any] = dict(self.call_args)
                if "prompt" in self._takes:
                    kwargs["prompt"] = [self.prompt] * n
                if self.negative_prompt is not None:
                    kwargs["negative_prompt"] = [self.negative_prompt] * n
                for key, value in (("height", h), ("width", w)):
                    if key in self._takes:
                        kwargs[key] = value
                result = self.pipe(image=img[s:s + n], mask_image=mask[s:s + n], generator=gens[s:s + n],
                                   output_type="np", **kwargs)
                out = np.asarray(result.images if hasattr(result, "images") else result[0], dtype=np.float32)
                if out.shape != (n, h, w, 3):
                    raise RuntimeError(f"{self.name}: pipeline returned {out.shape}, expected {(n, h, w, 3)}")
                outs.append(out)
        return np.concatenate(outs)

    # ------------------------------------------------------------------ provenance

    def describe(self) -> dict[str, Any]:
        import diffusers
        import transformers

        src = self.source
        unet = src.component_config("unet") or {}
        return {
            "name": self.name,
            "family": "diffusers",
            "pipeline": type(self.pipe).__name__,
            "index_class": src.class_name,
            "weights": {"source": src.kind, "repo_id": src.repo_id, "revision": src.revision, "path": str(src.path),
                        "content_sha256": content_digest(self.files), "files": self.files},
            "options": {"prompt": self.prompt, "negative_prompt": self.negative_prompt,
                        "steps": self.call_args.get("num_inference_steps"),
                        "guidance": self.call_args.get("guidance_scale"),
                        "strength": self.call_args.get("strength"), "scheduler": self.scheduler_name,
                        "precision": self.precision, "cpu_offload": self.cpu_offload, "variant": self.variant,
                        "micro_batch": self.micro_batch},
            "seed": self.seed,
            "seed_policy": SEED_POLICY,
            "pad_multiple": self.pad_multiple,
            "vae_scale_factor": getattr(self.pipe, "vae_scale_factor", None),
            "unet_in_channels": unet.get("in_channels"),
            "safety_checker": "not loaded",
            "known_region": "the VAE round-trip alters known pixels; the harness composites them back",
            "mask_convention": "harness holes True=missing -> mask_image 1=repaint",
            "value_range": list(self.value_range),
            "versions": {"diffusers": diffusers.__version__, "transformers": transformers.__version__},
            "device": str(self.device),
        }


def build_diffusers(target: str, *, weights_dir: str | None = None, offline: bool | None = None,
                    allow_unverified: bool = False, **kwargs: Any) -> DiffusersInpainter:
    """Factory behind ``diffusers:<target>``. The run's ``weights_dir``/``offline``/``allow_unverified`` do not
    apply: pipelines come from a directory or the Hugging Face cache, never from a download."""
    del weights_dir, offline, allow_unverified
    return DiffusersInpainter(target, **kwargs)
