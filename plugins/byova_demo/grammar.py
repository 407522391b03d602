"""What the demo's offline recogniser can hear: a JSGF grammar of the demo's phrases.

The general pocketsphinx language model does poorly on telephone audio; a small
grammar of what callers of this demo say makes recognition reliable offline.
"""

from __future__ import annotations

__all__ = ["DEMO_GRAMMAR"]

DEMO_GRAMMAR = """#JSGF V1.0;
grammar demo;
public <request> = [<polite>] <intent> [please];
<polite> = i want to | i would like to | i need to | can i | could i | let me | please;
<intent> = (talk | speak) to (an agent | a representative | a person | someone | a human)
  | agent | representative | operator
  | what are your opening hours | what are your hours | when are you open | opening hours
  | what is your address | where are you | where are you located | address
  | goodbye | bye | thank you goodbye | that is all
  | hello | yes | no | thank you | help;
"""
