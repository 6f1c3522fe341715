"""Offline speech synthesis with espeak-ng through ``espeakng-loader`` (libespeak-ng and its voices
as a PyPI wheel, no system package), called with ctypes, for the ``digits-speech`` data set.

espeak-ng keeps global state, so one process-wide :class:`Speaker` serialises calls with a lock.
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Speaker:
    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise ValueError("digits-speech needs espeak-ng: pip install espeakng-loader") from None
        self._lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        self.sample_rate = int(
            self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        )
        if self.sample_rate <= 0:
            raise ValueError("espeak-ng failed to initialise (espeakng-loader's voice data not found)")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: ctypes must not free it
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _collect(self, wav, n, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def say(
        self, text: str, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50
    ) -> tuple[np.ndarray, int]:
        """Speak ``text``: ``(samples float32 in [-1, 1], sample rate)``.

        ``rate`` in words per minute (80-450), ``pitch`` and ``pitch_range`` 0-100.

        Not bit-reproducible: espeak-ng's wave generator varies a clip by a few samples from call to
        call (measured; ``espeak_ng_SetRandSeed``, seeding libc and re-initialising do not stop it).
        ALICE extracts features once and caches them, so an artifact is reproducible from its cache.
        """
        data = text.encode()
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
                self._lib.espeak_SetParameter(parameter, int(value), 0)
            self._chunks.clear()
            if self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None) != 0:
                raise ValueError(f"espeak-ng could not speak {text!r}")
            self._lib.espeak_Synchronize()
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples.astype(np.float32) / 32768.0, self.sample_rate


@lru_cache(maxsize=1)
def speaker() -> Speaker:
    return Speaker()
