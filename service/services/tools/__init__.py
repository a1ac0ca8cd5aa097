"""Tool calling, shared by every surface that offers tools (OpenAI chat and Responses; next,
Anthropic Messages): the plan a request's tools and `tool_choice` make (`plan.py`), one object
per mode with its constraint and its reader (`modes.py`; `required.py` holds the `required`
mode's JSON format), the reading of an output into surface-neutral pieces and an `Outcome`
(`reader.py`), and the chat template for requests with tools (`chat_template.py`).

A surface plans once (`plan_tools`), generates under `plan.constraint`, renders its prompt with
`plan.template_tools`, reads each output sequence with `plan.reader(engine, reasoning=...)`
(step by step, or `read_whole`), and maps the `Outcome` to its own finish or stop reason.
"""

from service.services.tools.chat_template import chat_template
from service.services.tools.plan import NO_TOOLS, ToolPlan, check_tool_results, plan_tools
from service.services.tools.reader import Outcome, OutputReader

__all__ = [
    "NO_TOOLS",
    "Outcome",
    "OutputReader",
    "ToolPlan",
    "chat_template",
    "check_tool_results",
    "plan_tools",
]
