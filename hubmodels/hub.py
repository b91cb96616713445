"""Hub base: where checkpoints come from, how they load, and what their model card says.

Three things every hub model in this package shares:

* **Sources.** ``resolve_checkpoint`` turns an embedded preset name, a local folder or a hub id
  into local files. Presets are a registry (name -> folder inside the package, like timm's
  ``@register_model`` or open_clip's pretrained tags), so ``from_pretrained("fmnist-...")`` works
  offline. Hub ids go through ``hf_hub_download``, which honours ``HF_HUB_OFFLINE``.
* **Strict loading.** ``PyTorchModelHubMixin`` loads with ``strict=False`` by default; we never do.
  A missing, unexpected or mis-shaped tensor, a non-finite weight or an unreadable file is a
  ``CheckpointError`` that names the problem.
* **Pushing.** ``push_folder`` uploads a saved folder as it is; a failure leaves it untouched and
  says why.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import huggingface_hub.constants
import torch
from huggingface_hub import HfApi, get_session, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hubmodels.registry import Registry

T = TypeVar("T")

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
PRESETS_DIR = Path(__file__).parent / "presets"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as it is: the message says what is wrong."""


class HubPushError(RuntimeError):
    """A push to the Hub that did not go through; the local files are unchanged."""


@dataclass(frozen=True)
class Preset:
    """An embedded checkpoint: a ``save_pretrained`` folder shipped inside the package."""

    name: str
    folder: str  # relative to hubmodels/presets
    summary: str

    @property
    def path(self) -> Path:
        return PRESETS_DIR / self.folder


PRESETS = Registry("preset")


def register_preset(name: str, summary: str, folder: str | None = None) -> Preset:
    """Add an embedded checkpoint to the registry (its folder defaults to its name)."""
    return PRESETS.register(name, Preset(name=name, folder=folder or name, summary=summary))


def available_presets() -> list[str]:
    """Names of the embedded presets whose files are present in this installation."""
    return sorted(name for name, p in PRESETS.items() if (p.path / CONFIG_NAME).is_file())


def resolve_checkpoint(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> tuple[dict[str, Any], Path]:
    """Return ``(config, weights_path)`` for a preset name, a local folder or a hub id."""
    source = str(name_or_path)
    if source in PRESETS:
        folder = PRESETS[source].path
        if not (folder / CONFIG_NAME).is_file():
            raise CheckpointError(
                f"preset {source!r} is registered but its files are missing from {folder}; "
                "reinstall the package"
            )
        return _read_local(folder)
    if os.path.isdir(source):
        return _read_local(Path(source))
    if os.path.exists(source):
        raise CheckpointError(
            f"{source!r} is a file; pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    if source.count("/") != 1:
        known = ", ".join(available_presets()) or "none installed"
        raise CheckpointError(
            f"{source!r} is neither a preset ({known}), a local folder, nor a hub id 'org/name'"
        )
    kwargs = dict(
        repo_id=source,
        revision=revision,
        cache_dir=cache_dir,
        force_download=force_download,
        token=token,
    )

    def fetch(local_only: bool) -> tuple[dict[str, Any], Path]:
        try:
            config_path = hf_hub_download(
                filename=CONFIG_NAME, local_files_only=local_only, **kwargs
            )
            weights = hf_hub_download(filename=WEIGHTS_NAME, local_files_only=local_only, **kwargs)
        except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: let it through
            raise
        except EntryNotFoundError as err:
            if local_only:
                raise LocalEntryNotFoundError(str(err)) from err  # a partial cache: not there
            raise CheckpointError(
                f"hub repo {source!r} lacks a file ({err}); it must hold {CONFIG_NAME} and "
                f"{WEIGHTS_NAME} (pickled .bin weights are not loaded, by design)"
            ) from err
        return read_config(Path(config_path)), Path(weights)

    # The cache first (a cached checkpoint loads with no network at all), unless told otherwise.
    return _from_hub(source, fetch, local_files_only, cache_first=not force_download)


def resolve_folder(
    source: str | os.PathLike,
    patterns: list[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """A saved folder (it must hold config.json) as it is, or a hub id's files matching
    ``patterns`` fetched into the cache: for checkpoints that are more than one weights file.

    Like ``resolve_checkpoint``: the cache first, and an unreachable Hub fails in seconds.
    """
    if os.path.isdir(source):
        folder = Path(source)
        if not (folder / CONFIG_NAME).is_file():
            raise CheckpointError(f"{folder} has no {CONFIG_NAME}: write one with save_pretrained")
        return folder
    source = str(source)
    if source.count("/") != 1 or os.path.exists(source):
        raise CheckpointError(f"{source!r} is neither a saved folder nor a hub id 'org/name'")
    kwargs = dict(
        repo_id=source, revision=revision, cache_dir=cache_dir, token=token, allow_patterns=patterns
    )

    def fetch(local_only: bool) -> Path:
        return resolve_folder(snapshot_download(local_files_only=local_only, **kwargs), patterns)

    return _from_hub(source, fetch, local_files_only)


def _from_hub(
    source: str, fetch: Callable[[bool], T], local_files_only: bool, *, cache_first: bool = True
) -> T:
    """``fetch(local_only)`` from the cache, else from the Hub once it is known to answer; a
    failure is one ``CheckpointError`` sentence, in seconds when the Hub cannot be reached."""
    if cache_first:
        try:
            return fetch(True)
        except LocalEntryNotFoundError:
            pass
    reason = "local_files_only=True" if local_files_only else hub_unreachable()
    if reason:  # fail now, in one sentence, rather than after a minute of retries
        raise CheckpointError(
            f"{source!r} is not in the local cache and the Hugging Face Hub cannot be reached "
            f"({reason})"
        )
    try:
        return fetch(False)
    except LocalEntryNotFoundError as err:
        raise CheckpointError(
            f"{source!r} is not in the local cache and the Hub cannot be reached "
            f"(offline mode or no network): {err}"
        ) from err
    except HfHubHTTPError as err:
        raise CheckpointError(f"could not fetch {source!r} from the Hub: {err}") from err


HUB_PROBE_TIMEOUT = 3.0  # seconds; a reachable Hub answers a HEAD request far sooner
_probed: dict[str, str | None] = {}  # endpoint -> why it could not be reached (None: it could)


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached now, or None when it can.

    Offline mode (``HF_HUB_OFFLINE``) answers at once. Otherwise one HEAD request with a short
    timeout decides, once per process: a machine without network then fails every hub load in
    seconds, where each download would spend about a minute on retries.
    """
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "offline mode: HF_HUB_OFFLINE is set"
    endpoint = huggingface_hub.constants.ENDPOINT
    if endpoint not in _probed:
        try:
            get_session().head(endpoint, timeout=HUB_PROBE_TIMEOUT)
            _probed[endpoint] = None
        except Exception as err:  # any transport failure (DNS, refused, timeout): unreachable
            _probed[endpoint] = f"{endpoint} did not answer: {type(err).__name__}"
    return _probed[endpoint]


def _read_local(folder: Path) -> tuple[dict[str, Any], Path]:
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} is not a checkpoint folder: missing {', '.join(missing)} "
            "(write one with save_pretrained)"
        )
    return read_config(folder / CONFIG_NAME), folder / WEIGHTS_NAME


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable JSON config: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object, not {type(config).__name__}")
    return config


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, **kw: Any) -> None:
    """``safetensors.torch.save_file``, leaving the file readable like any other we write.

    safetensors creates its file with mode 0600 whatever the umask; a checkpoint folder whose
    weights only its writer can read breaks a shared cache or a web server. The mode is copied
    from a file Python creates beside it, which honours the umask.
    """
    path = Path(path)
    save_file(tensors, str(path), **kw)
    probe = path.with_name(f".{path.name}.mode-{os.getpid()}")
    try:
        probe.touch()
        os.chmod(path, stat.S_IMODE(probe.stat().st_mode))
    finally:
        probe.unlink(missing_ok=True)


def check_weights_header(
    expected: dict[str, torch.Tensor],
    weights_path: str | os.PathLike,
    ignore_prefixes: tuple[str, ...] = (),
) -> None:
    """Compare the names and shapes a model expects with a safetensors file's header, reading
    no tensor data; a ``CheckpointError`` lists what differs.

    ``expected`` may live on the meta device: build the model there from an untrusted config,
    check, and only allocate once the file agrees (a config claiming 10**8 classes would
    otherwise ask for tens of gigabytes before any check ran).
    """
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            shapes = {
                k: tuple(handle.get_slice(k).get_shape())
                for k in handle.keys()  # noqa: SIM118 - safe_open has no __iter__
                if not k.startswith(ignore_prefixes or ("\0",))
            }
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file (corrupt or truncated?): {err}"
        ) from err
    problems = layout_problems({k: tuple(v.shape) for k, v in expected.items()}, shapes)
    if problems:
        raise CheckpointError(
            f"{weights_path} does not match the model its config describes; " + "; ".join(problems)
        )


def layout_problems(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    against: str = "model",
) -> list[str]:
    """Missing, unexpected and mis-shaped tensors of a file (``found``: name -> shape) against
    what ``against`` expects, as sentences; an empty list when the layouts agree."""
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing tensors: {short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {short_list(unexpected)}")
    mis_shaped = [
        f"{k}: file {found[k]} vs {against} {expected[k]}"
        for k in sorted(set(expected) & set(found))
        if found[k] != expected[k]
    ]
    if mis_shaped:
        problems.append(f"mis-shaped tensors: {short_list(mis_shaped)}")
    return problems


def load_state_dict_strict(
    module: torch.nn.Module,
    weights_path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    ignore_prefixes: tuple[str, ...] = (),
) -> None:
    """Load safetensors weights into ``module``, refusing anything but an exact match.

    Checks, in order: the file is a readable safetensors file; the key sets match (missing and
    unexpected keys are listed); every shape matches; every floating tensor is finite. Only then
    are the tensors copied, so a rejected file leaves ``module`` untouched. Tensors whose names
    start with one of ``ignore_prefixes`` are dropped unread (a retired part of a checkpoint).
    """
    try:
        tensors = load_file(str(weights_path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file (corrupt or truncated?): {err}"
        ) from err
    if ignore_prefixes:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(ignore_prefixes)}
    problems = layout_problems(
        {k: tuple(v.shape) for k, v in module.state_dict().items()},
        {k: tuple(v.shape) for k, v in tensors.items()},
    )
    non_finite = [
        k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if non_finite:
        problems.append(f"non-finite values (NaN/inf) in: {short_list(non_finite)}")
    if problems:
        raise CheckpointError(
            f"{weights_path} does not match the model its config describes; " + "; ".join(problems)
        )
    module.load_state_dict(tensors, strict=True)


def short_list(items: list[str], limit: int = 6) -> str:
    """The first ``limit`` items, comma-separated, and how many more: for one-line errors."""
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload hubmodels checkpoint",
    required: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME),
) -> str:
    """Upload a ``save_pretrained`` folder to ``repo_id`` as one commit; return the commit URL.

    ``required`` names the files without which the folder is not a checkpoint (a bank-less
    CLIPInverter has only its config). The folder is only read. Any failure (no token, no
    network, a refused repo) becomes a
    ``HubPushError`` that says the local files are intact.
    """
    folder = Path(folder)
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:  # refuse to push something that is not a checkpoint
        raise CheckpointError(
            f"{folder} is not a checkpoint folder: missing {', '.join(missing)} "
            "(write one with save_pretrained)"
        )
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message
        )
    except Exception as err:  # network, auth and server errors all end the same way
        raise HubPushError(
            f"push of {folder} to {repo_id!r} failed ({type(err).__name__}: {err}); "
            f"the local files in {folder} are unchanged. Check `hf auth login` / HF_TOKEN "
            "and the network, then run `python -m hubmodels push` again."
        ) from err
    return str(getattr(commit, "commit_url", commit))


# ------------------------------------------------------------------ embedded presets
# Each is a save_pretrained folder under hubmodels/presets/, trained by this package's own
# trainer; checkpoints.md gives the command, wall time and measured numbers of each.
register_preset(
    "fmnist-smallcnn-standard",
    "Fashion-MNIST small CNN, plain cross-entropy: the non-robust reference",
)
register_preset(
    "fmnist-smallcnn-der",
    "Fashion-MNIST small CNN, PGD-AT + delta-energy regulariser (DER), L-inf eps 0.1",
)
register_preset(
    "fmnist-smallcnn-weat",
    "Fashion-MNIST small CNN, WEAT_adv (energy-weighted TRADES), L-inf eps 0.1",
)
register_preset(
    "fmnist-smallcnn-pgdat",
    "Fashion-MNIST small CNN, PGD-AT (Madry et al.), L-inf eps 0.1",
)
register_preset(
    "fmnist-smallcnn-trades",
    "Fashion-MNIST small CNN, TRADES (beta 6), L-inf eps 0.1",
)
