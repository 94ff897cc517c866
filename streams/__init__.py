"""The stream pipeline: the app-facing producer SDK, the batched stages, and the traffic simulator.

App teams use ``EventProducer`` (Python) or the JSON Schemas in ``schemas/json/`` (other
languages). ``toneflow worker`` runs the stages (``streams/batch_stage.py``): labeler → join →
sink, plus the retrain trigger.
"""

from streams.producer import DeliveryError, EventProducer

__all__ = ["DeliveryError", "EventProducer"]
