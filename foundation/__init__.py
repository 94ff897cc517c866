"""The floor every toneflow package stands on: settings, errors, Kafka client configuration, the
embedded broker, durable-write helpers, failpoints, the text encoder and the CLI registration
helper. It imports no other toneflow package (``make lint`` checks it).
"""
