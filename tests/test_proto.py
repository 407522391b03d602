"""The wire contract: generated modules match protos/, names and numbers match Appendix A."""

from __future__ import annotations

import pytest

from byova_media._proto import regen
from byova_media._proto import voicevirtualagent_pb2 as pb


def test_generated_modules_match_the_protos() -> None:
    expected = regen.generate()
    for name, source in expected.items():
        committed = (regen.PACKAGE_DIR / name).read_text()
        assert committed == source, (
            f"{name} drifted from protos/: run python -m byova_media._proto.regen"
        )


def test_revision_is_recorded() -> None:
    assert (regen.PROTO_DIR / "REVISION").read_text().splitlines()[0] == "v1.11"


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        ("VoiceVARequest", "conversation_id", 1),
        ("VoiceVARequest", "audio_input", 6),
        ("VoiceVARequest", "dtmf_input", 7),
        ("VoiceVARequest", "event_input", 8),
        ("VoiceVARequest", "additional_info", 9),
        ("VoiceInput", "audio_timestamp", 4),
        ("VoiceInput", "is_single_utterance", 6),
        ("VoiceVAResponse", "session_summary", 7),
        ("VoiceVAResponse", "response_type", 8),
        ("Prompt", "is_barge_in_enabled", 4),
        ("OutputEvent", "metadata", 3),
        ("VirtualAgentInfo", "attributes", 4),
    ],
)
def test_field_numbers(message: str, field: str, number: int) -> None:
    assert pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number == number


def test_enum_values_that_bite() -> None:
    from byova_media._proto import byova_common_pb2 as common

    assert common.DTMF_DIGIT_ZERO == 10
    assert pb.VoiceVAResponse.FINAL == 0  # an untyped response is a FINAL
    assert common.InputSpeechTimers.DESCRIPTOR.fields_by_name["no_input_timeout_msec"].number == 4
    assert pb.OutputEvent.START_OF_INPUT == 4 and pb.OutputEvent.END_OF_INPUT == 5
    assert pb.EventInput.CUSTOM_EVENT == 5
    method = pb.DESCRIPTOR.services_by_name["VoiceVirtualAgent"].methods_by_name[
        "ProcessCallerInput"
    ]
    assert method.full_name == "com.cisco.wcc.ccai.media.v1.VoiceVirtualAgent.ProcessCallerInput"
