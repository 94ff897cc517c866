"""toneflow: distil a teacher LLM into a small, fast colour-tool-calling student.

The ``toneflow`` package holds what every other package stands on (settings, errors, Kafka
client configuration, the embedded broker) and the one CLI that fronts them all.
"""

__version__ = "0.1.0"
