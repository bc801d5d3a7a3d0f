"""``usbkit report --help`` explains every option and says where the report goes."""

from __future__ import annotations

import re

from usbkit.cli import build_parser
from usbkit.report.builder import ReportConfig


def test_report_help_explains_every_option_and_says_the_default_out():
    parser = build_parser()
    report = parser._subparsers._group_actions[0].choices["report"]
    for action in report._actions:
        assert action.help, f"{action.option_strings} is not explained"
    text = report.format_help()
    assert f"(default: {ReportConfig().out})" in re.sub(r"\s+", " ", text)
    assert "OUT/index.html" in re.sub(r"\s+", " ", text)
