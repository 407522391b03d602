from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DTMFDigits(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTMF_EVENT_UNSPECIFIED: _ClassVar[DTMFDigits]
    DTMF_DIGIT_ONE: _ClassVar[DTMFDigits]
    DTMF_DIGIT_TWO: _ClassVar[DTMFDigits]
    DTMF_DIGIT_THREE: _ClassVar[DTMFDigits]
    DTMF_DIGIT_FOUR: _ClassVar[DTMFDigits]
    DTMF_DIGIT_FIVE: _ClassVar[DTMFDigits]
    DTMF_DIGIT_SIX: _ClassVar[DTMFDigits]
    DTMF_DIGIT_SEVEN: _ClassVar[DTMFDigits]
    DTMF_DIGIT_EIGHT: _ClassVar[DTMFDigits]
    DTMF_DIGIT_NINE: _ClassVar[DTMFDigits]
    DTMF_DIGIT_ZERO: _ClassVar[DTMFDigits]
    DTMF_DIGIT_A: _ClassVar[DTMFDigits]
    DTMF_DIGIT_B: _ClassVar[DTMFDigits]
    DTMF_DIGIT_C: _ClassVar[DTMFDigits]
    DTMF_DIGIT_D: _ClassVar[DTMFDigits]
    DTMF_DIGIT_STAR: _ClassVar[DTMFDigits]
    DTMF_DIGIT_POUND: _ClassVar[DTMFDigits]

class VoiceVAInputMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INPUT_VOICE_MODE_UNSPECIFIED: _ClassVar[VoiceVAInputMode]
    INPUT_VOICE: _ClassVar[VoiceVAInputMode]
    INPUT_EVENT_DTMF: _ClassVar[VoiceVAInputMode]
    INPUT_VOICE_DTMF: _ClassVar[VoiceVAInputMode]
DTMF_EVENT_UNSPECIFIED: DTMFDigits
DTMF_DIGIT_ONE: DTMFDigits
DTMF_DIGIT_TWO: DTMFDigits
DTMF_DIGIT_THREE: DTMFDigits
DTMF_DIGIT_FOUR: DTMFDigits
DTMF_DIGIT_FIVE: DTMFDigits
DTMF_DIGIT_SIX: DTMFDigits
DTMF_DIGIT_SEVEN: DTMFDigits
DTMF_DIGIT_EIGHT: DTMFDigits
DTMF_DIGIT_NINE: DTMFDigits
DTMF_DIGIT_ZERO: DTMFDigits
DTMF_DIGIT_A: DTMFDigits
DTMF_DIGIT_B: DTMFDigits
DTMF_DIGIT_C: DTMFDigits
DTMF_DIGIT_D: DTMFDigits
DTMF_DIGIT_STAR: DTMFDigits
DTMF_DIGIT_POUND: DTMFDigits
INPUT_VOICE_MODE_UNSPECIFIED: VoiceVAInputMode
INPUT_VOICE: VoiceVAInputMode
INPUT_EVENT_DTMF: VoiceVAInputMode
INPUT_VOICE_DTMF: VoiceVAInputMode

class TextContent(_message.Message):
    __slots__ = ("text", "ssml", "language_code")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SSML_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    text: str
    ssml: str
    language_code: str
    def __init__(self, text: _Optional[str] = ..., ssml: _Optional[str] = ..., language_code: _Optional[str] = ...) -> None: ...

class DTMFInputConfig(_message.Message):
    __slots__ = ("inter_digit_timeout_msec", "termchar", "dtmf_input_length")
    INTER_DIGIT_TIMEOUT_MSEC_FIELD_NUMBER: _ClassVar[int]
    TERMCHAR_FIELD_NUMBER: _ClassVar[int]
    DTMF_INPUT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    inter_digit_timeout_msec: int
    termchar: DTMFDigits
    dtmf_input_length: int
    def __init__(self, inter_digit_timeout_msec: _Optional[int] = ..., termchar: _Optional[_Union[DTMFDigits, str]] = ..., dtmf_input_length: _Optional[int] = ...) -> None: ...

class InputSpeechTimers(_message.Message):
    __slots__ = ("max_speech_timeout_msec", "complete_timeout_msec", "incomplete_timeout_msec", "no_input_timeout_msec")
    MAX_SPEECH_TIMEOUT_MSEC_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIMEOUT_MSEC_FIELD_NUMBER: _ClassVar[int]
    INCOMPLETE_TIMEOUT_MSEC_FIELD_NUMBER: _ClassVar[int]
    NO_INPUT_TIMEOUT_MSEC_FIELD_NUMBER: _ClassVar[int]
    max_speech_timeout_msec: int
    complete_timeout_msec: int
    incomplete_timeout_msec: int
    no_input_timeout_msec: int
    def __init__(self, max_speech_timeout_msec: _Optional[int] = ..., complete_timeout_msec: _Optional[int] = ..., incomplete_timeout_msec: _Optional[int] = ..., no_input_timeout_msec: _Optional[int] = ...) -> None: ...

class InputHandlingConfig(_message.Message):
    __slots__ = ("dtmf_config", "speech_timers")
    DTMF_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SPEECH_TIMERS_FIELD_NUMBER: _ClassVar[int]
    dtmf_config: DTMFInputConfig
    speech_timers: InputSpeechTimers
    def __init__(self, dtmf_config: _Optional[_Union[DTMFInputConfig, _Mapping]] = ..., speech_timers: _Optional[_Union[InputSpeechTimers, _Mapping]] = ...) -> None: ...
