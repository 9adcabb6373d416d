"""The one place that chooses a TFLite interpreter and runs a model (CPU or Coral Edge TPU).

Interpreter: ``ai_edge_litert`` (Google's successor to tflite-runtime, numpy 2) first, else
``tflite_runtime`` (numpy < 2 only; see ../shared/STACK.md). Backends:

- ``cpu``: the interpreter's built-in kernels (XNNPACK for int8).
- ``edgetpu``: the Coral delegate ``libedgetpu.so.1``. Where the library is missing,
  ``load_delegate`` raises ``OSError``; we then log one clear line and fall back to the CPU,
  or raise :class:`DelegateUnavailableError` when the config says no fallback.

Quantization follows the tensor details: a float input is quantized as
``q = round(x / scale) + zero_point`` (clipped to the tensor's integer range) and an integer
output is dequantized as ``x = scale * (q - zero_point)`` (TFLite quantization spec,
https://ai.google.dev/edge/litert/models/quantization_spec).

:meth:`TfliteModel.predict` is synchronous and cheap (~10-100 µs for our models); the live
agent calls it from its worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from agent.errors import BedsideError

logger = logging.getLogger(__name__)

Backend = Literal["cpu", "edgetpu"]

EDGETPU_LIBRARY: Final = "libedgetpu.so.1"
"""The Coral runtime's shared library (Debian package libedgetpu1-std)."""


_runtime_stderr_seen = False
"""True once a model has been loaded in this process with the runtime's stderr read back."""


@contextlib.contextmanager
def _runtime_stderr_to_log() -> Iterator[None]:
    """Read back what the TFLite runtime writes to stderr (fd 2) while a model loads; log it.

    On the first ``allocate_tensors`` of a process the runtime's C++ code prints ``INFO:
    Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to file descriptor 2, with no
    Python API to silence it (TFLite's minimal logger; tensorflow/tensorflow#58050): one such
    line per worker of ``bedside analyze -q``, which promises errors only, interleaved when
    two workers start at once. For the first load of the process, fd 2 points at a temporary
    file; afterwards every line it holds is logged, the runtime's ``INFO:`` lines at DEBUG and
    anything else at WARNING, so nothing is lost. Later loads (the runtime says it once) leave
    stderr alone, so that no other thread's output is caught in passing. Where fd 2 cannot
    be duplicated (closed, no ``sys.stderr``), nothing is redirected.
    """
    global _runtime_stderr_seen  # once per process, by design
    if _runtime_stderr_seen:
        yield
        return
    _runtime_stderr_seen = True
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:  # also when the load fails: the runtime's own error lines come first
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", errors="replace").splitlines():
                if line.strip():
                    level = logging.DEBUG if line.startswith("INFO: ") else logging.WARNING
                    logger.log(level, "TFLite runtime: %s", line.strip())


class InferenceError(BedsideError):
    """A model cannot be loaded or run."""


class DelegateUnavailableError(InferenceError):
    """The Edge TPU delegate cannot be loaded and CPU fallback is disabled.

    Attributes
    ----------
    library : str
        The delegate library that failed to load.
    reason : str
        The loader's message (``OSError`` text).
    """

    def __init__(self, library: str, reason: str) -> None:
        super().__init__(
            f"Edge TPU delegate {library} unavailable ({reason}); install libedgetpu1-std"
            " or set inference.fallback_to_cpu = true"
        )
        self.library = library
        self.reason = reason


class _Interpreter(Protocol):
    def allocate_tensors(self) -> None: ...
    def get_input_details(self) -> list[dict[str, Any]]: ...
    def get_output_details(self) -> list[dict[str, Any]]: ...
    def set_tensor(self, index: int, value: NDArray[Any]) -> None: ...
    def get_tensor(self, index: int) -> NDArray[Any]: ...
    def invoke(self) -> None: ...
    def reset_all_variables(self) -> None: ...


def interpreter_module() -> tuple[str, Any]:
    """Return ``(name, module)`` of the TFLite interpreter in use.

    Raises
    ------
    InferenceError
        If neither ``ai_edge_litert`` nor ``tflite_runtime`` is installed.
    """
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:
        pass
    else:
        return "ai_edge_litert", litert
    try:
        from tflite_runtime import interpreter as tflite_rt
    except ImportError as err:
        msg = "no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime)"
        raise InferenceError(msg) from err
    return "tflite_runtime", tflite_rt


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One model input or output, as the interpreter reports it.

    Attributes
    ----------
    name : str
        Tensor name (Keras input names appear as ``serving_default_<name>:0``).
    index : int
        Interpreter tensor index.
    shape : tuple[int, ...]
        Static shape, batch first (our models use batch 1).
    dtype : numpy.dtype
        Tensor element type (int8 for our quantized models).
    scale : float
        Quantization scale, 0.0 for float tensors.
    zero_point : int
        Quantization zero point.
    quantized : bool
        True for an integer tensor with a scale (int8/uint8 quantized); derived.
    size : int
        Number of elements, the product of ``shape``; derived.
    """

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    scale: float
    zero_point: int
    # Per-tensor constants, derived once in __post_init__ (the per-beat path used to ask
    # ``np.iinfo`` and ``np.issubdtype`` on every call; issue 11).
    quantized: bool = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)
    _qmin: float = field(init=False, repr=False, compare=False)
    _qmax: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        quantized = self.scale != 0.0 and bool(np.issubdtype(self.dtype, np.integer))
        object.__setattr__(self, "quantized", quantized)
        object.__setattr__(self, "size", math.prod(self.shape))
        info = np.iinfo(self.dtype) if quantized else None
        object.__setattr__(self, "_qmin", 0.0 if info is None else float(info.min))
        object.__setattr__(self, "_qmax", 0.0 if info is None else float(info.max))

    def quantize(self, x: NDArray[Any]) -> NDArray[Any]:
        """Convert float values to this tensor's dtype (a plain cast for float tensors).

        ``q = clip(rint(x / scale) + zero_point)`` computed in float64, as the TFLite
        quantization spec (module docstring) rounds it.
        """
        if not self.quantized:
            return np.asarray(x, dtype=self.dtype)
        q = np.asarray(x, dtype=np.float64) / self.scale
        np.rint(q, out=q)
        q += self.zero_point
        np.maximum(q, self._qmin, out=q)  # np.clip without its wrapper: same values
        np.minimum(q, self._qmax, out=q)
        return q.astype(self.dtype)

    def dequantize(self, q: NDArray[Any]) -> NDArray[np.float32]:
        """Convert this tensor's values to float32: ``scale * (q - zero_point)``."""
        if not self.quantized:
            return np.asarray(q, dtype=np.float32)
        x = q.astype(np.float32)
        x -= self.zero_point
        x *= np.float32(self.scale)
        return x


def _tensor_info(detail: Mapping[str, Any]) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=str(detail["name"]),
        index=int(detail["index"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TfliteModel:
    """A loaded TFLite model with float-in, float-out :meth:`predict`.

    Create with :func:`load_model`. Thread-safe: calls are serialised by a lock (one
    interpreter owns one set of tensors).

    Attributes
    ----------
    path : Path
        The model file.
    backend : Backend
        The backend actually in use (``cpu`` after a fallback).
    requested_backend : Backend
        The backend the configuration asked for.
    runtime : str
        ``ai_edge_litert`` or ``tflite_runtime``.
    inputs, outputs : tuple[TensorInfo, ...]
        Tensor details, in the interpreter's order.
    """

    def __init__(
        self,
        interpreter: _Interpreter,
        *,
        path: Path,
        backend: Backend,
        requested_backend: Backend,
        runtime: str,
    ) -> None:
        self._interp = interpreter
        self._lock = threading.Lock()
        self.path = path
        self.backend: Backend = backend
        self.requested_backend: Backend = requested_backend
        self.runtime = runtime
        interpreter.allocate_tensors()
        self.inputs = tuple(_tensor_info(d) for d in interpreter.get_input_details())
        self.outputs = tuple(_tensor_info(d) for d in interpreter.get_output_details())
        self._by_key: dict[str, TensorInfo] = {}

    def _input_for(self, key: str) -> TensorInfo:
        """:meth:`input_named`, memoised per key (predict looks the same keys up per beat)."""
        info = self._by_key.get(key)
        if info is None:
            info = self._by_key[key] = self.input_named(key)
        return info

    def input_named(self, key: str) -> TensorInfo:
        """Return the input named ``key`` or whose name contains it (``rr`` → ``..._rr:0``).

        Raises
        ------
        KeyError
            If no input, or more than one, matches.
        """
        exact = [t for t in self.inputs if t.name == key]
        found = exact or [t for t in self.inputs if key in t.name]
        if len(found) != 1:
            names = ", ".join(t.name for t in self.inputs)
            msg = f"{len(found)} inputs of {self.path.name} match {key!r} (inputs: {names})"
            raise KeyError(msg)
        return found[0]

    def predict(
        self, inputs: Mapping[str, NDArray[Any]] | Sequence[NDArray[Any]]
    ) -> list[NDArray[np.float32]]:
        """Run one inference.

        Parameters
        ----------
        inputs
            Float arrays, either in :attr:`inputs` order or keyed by (part of) the tensor
            name. Each must have exactly the tensor's shape (batch 1 included) or that shape
            without the leading batch axis.

        Returns
        -------
        list of NDArray[np.float32]
            The outputs in :attr:`outputs` order, dequantized, each with its tensor's shape.

        Raises
        ------
        ValueError
            If an input's size does not match its tensor.
        KeyError
            If a named input matches no tensor.
        """
        if isinstance(inputs, Mapping):
            pairs = [(self._input_for(k), v) for k, v in inputs.items()]
        else:
            if len(inputs) != len(self.inputs):
                msg = f"{self.path.name} takes {len(self.inputs)} inputs, got {len(inputs)}"
                raise ValueError(msg)
            pairs = list(zip(self.inputs, inputs, strict=True))
        with self._lock:
            for info, value in pairs:
                arr = np.asarray(value)
                if arr.size != info.size:
                    msg = (
                        f"input {info.name} of {self.path.name} has shape {info.shape},"
                        f" got {arr.shape}"
                    )
                    raise ValueError(msg)
                self._interp.set_tensor(info.index, info.quantize(arr.reshape(info.shape)))
            # A fused LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM, the AF model) keeps its hidden and
            # cell state in variable tensors that TFLite carries from one Invoke to the next;
            # every model here was trained on independent inputs, so each call starts from
            # zero state (about 0.3 us; a model without variables is unaffected).
            self._interp.reset_all_variables()
            self._interp.invoke()
            return [o.dequantize(self._interp.get_tensor(o.index)) for o in self.outputs]


def load_model(
    path: Path,
    *,
    backend: Backend = "cpu",
    fallback_to_cpu: bool = True,
    num_threads: int = 1,
    content: bytes | None = None,
) -> TfliteModel:
    """Load a ``.tflite`` model on the requested backend.

    Parameters
    ----------
    path
        The model file. For ``edgetpu`` this should be the ``*_edgetpu.tflite`` compiled by
        ``edgetpu_compiler``; a plain int8 model also runs there (all ops on the CPU).
    backend
        ``cpu`` or ``edgetpu``.
    fallback_to_cpu
        When the Edge TPU delegate cannot be loaded: True logs one warning and runs on the
        CPU; False raises :class:`DelegateUnavailableError`.
    num_threads
        CPU threads for the interpreter (1 keeps the Pi's other cores for the pipeline).
    content
        The model's bytes, already read (and checked against its card): no file is read,
        ``path`` only names the model in messages.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DelegateUnavailableError
        If ``backend == "edgetpu"``, the delegate fails to load and fallback is off.
    InferenceError
        If no interpreter is installed or the file is not a valid model.
    """
    if content is None and not path.is_file():
        msg = f"model file not found: {path}"
        raise FileNotFoundError(msg)
    runtime, module = interpreter_module()
    delegates: list[Any] = []
    actual: Backend = "cpu"
    if backend == "edgetpu":
        try:
            # Probe the shared library first: when it is missing, the runtimes'
            # ``load_delegate`` raises from a half-built Delegate whose ``__del__`` then fails
            # again ("Exception ignored ... no attribute '_library'") on stderr.
            ctypes.CDLL(EDGETPU_LIBRARY)
            delegates = [module.load_delegate(EDGETPU_LIBRARY)]
            actual = "edgetpu"
        except (OSError, ValueError) as err:
            if not fallback_to_cpu:
                raise DelegateUnavailableError(EDGETPU_LIBRARY, str(err)) from err
            logger.warning(
                "Edge TPU unavailable (%s: %s); running %s on the CPU",
                EDGETPU_LIBRARY,
                err,
                path.name,
            )
    try:
        source: dict[str, Any] = (
            {"model_path": str(path)} if content is None else {"model_content": content}
        )
        with _runtime_stderr_to_log():
            interp = module.Interpreter(
                **source, experimental_delegates=delegates, num_threads=num_threads
            )
            return TfliteModel(
                interp, path=path, backend=actual, requested_backend=backend, runtime=runtime
            )
    except (ValueError, RuntimeError) as err:
        msg = f"cannot load TFLite model {path}: {err}"
        raise InferenceError(msg) from err
