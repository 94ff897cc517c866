"""The trainer: data snapshots, augmentation, students, the paper's metrics and the model registry.

Importing ``trainer`` is cheap (no torch); the heavy parts load inside the functions that use them.
Entry points: ``toneflow train|eval|dataset|models`` (``trainer.cli``), ``trainer.registry.load_student``.
"""
