"""Who said what: split channels with bleed removal, mono diarization, and agent/customer roles."""

from callscribe.speakers.channels import BLEED_DB, BleedResult, ChannelLevels, choose_mode, measure, remove_bleed
from callscribe.speakers.roles import RoleDecision, RolePatterns, assign_roles, load_patterns
from callscribe.speakers.stage import SpeakerPlan, drop_text_bleed, finalize, plan_speakers, role_label

__all__ = [
    "BLEED_DB",
    "BleedResult",
    "ChannelLevels",
    "RoleDecision",
    "RolePatterns",
    "SpeakerPlan",
    "assign_roles",
    "choose_mode",
    "drop_text_bleed",
    "finalize",
    "load_patterns",
    "measure",
    "plan_speakers",
    "remove_bleed",
    "role_label",
]
