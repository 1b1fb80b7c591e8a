"""Audio beyond Gemma 3n's 30 s: windows cut at pauses, answered in turn through the one chat path, stitched.

`windows` plans where a clip is cut, `stitch` joins the windows' texts without duplicated or
lost words, `flow` decides when a request needs windows and runs them (`WindowedStream`).
"""

from .flow import LONG_AUDIO_MODES, TRANSCRIBE_INSTRUCTION, LongAudioPlan, WindowedStream, is_transcription_prompt, plan_long_audio
from .stitch import merge, stitch
from .windows import Window, plan_windows, silent_frames

__all__ = [
    "LONG_AUDIO_MODES",
    "TRANSCRIBE_INSTRUCTION",
    "LongAudioPlan",
    "Window",
    "WindowedStream",
    "is_transcription_prompt",
    "merge",
    "plan_long_audio",
    "plan_windows",
    "silent_frames",
    "stitch",
]
