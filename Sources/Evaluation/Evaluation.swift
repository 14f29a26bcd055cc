// Module Evaluation.
