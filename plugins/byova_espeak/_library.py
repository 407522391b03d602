"""The eSpeak NG shared library bound with ctypes (from the ``espeakng-loader`` wheel).

eSpeak NG keeps one synthesiser per process and is not thread-safe, so there is one
:class:`EspeakLibrary` per process (:func:`library`) and every use holds its lock.
The library runs in synchronous mode: ``espeak_Synth`` blocks in the calling thread
and hands each block of samples to the synth callback as soon as it is made.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["EspeakError", "EspeakLibrary", "library"]

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1
_PITCH = 3
_EE_OK = 0
#: Milliseconds of audio per callback block (the library's own buffering unit).
_BLOCK_MS = 60

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

#: Receives each block of PCM16 bytes; returns True to abort synthesis.
Sink = Callable[[bytes], bool]


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class EspeakLibrary:
    """The process's eSpeak NG; use :meth:`synthesize` from a worker thread."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise EspeakError(
                "the espeak plugin needs espeakng-loader: pip install 'byova-media[espeak]'"
            ) from exc
        self.lock = threading.Lock()
        #: The one thread that synthesises: work is serialised anyway, and queued jobs must
        #: not hold threads of the shared default executor (the recogniser needs those).
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BLOCK_MS, data, 0)
        if rate <= 0:
            raise EspeakError("espeak_Initialize failed (is espeak-ng-data complete?)")
        self.sample_rate = int(rate)
        self._sink: Sink | None = None
        # Keep a reference: ctypes frees the trampoline when the object is collected.
        self._callback = _CALLBACK(self._on_samples)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_samples(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        sink = self._sink
        if sink is None:
            return 1
        if count > 0 and wav:
            data = ctypes.string_at(wav, count * 2)
            return 1 if sink(data) else 0
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int, sink: Sink) -> None:
        """Speak ``text`` into ``sink`` block by block (blocking; call from a worker thread)."""
        encoded = text.encode("utf-8") + b"\0"
        with self.lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise EspeakError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_PITCH, pitch, 0)
            self._sink = sink
            try:
                self._lib.espeak_Synth(
                    encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                self._lib.espeak_Synchronize()
            finally:
                self._sink = None


@functools.cache
def _load() -> EspeakLibrary:
    return EspeakLibrary()


#: Guards the first load: the library must be initialised exactly once per process.
_LOAD_LOCK = threading.Lock()


def library() -> EspeakLibrary:
    """The process's one eSpeak NG instance, loaded on first use."""
    with _LOAD_LOCK:
        return _load()
