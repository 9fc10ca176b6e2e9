"""Training and evaluation with Hugging Face Accelerate (one loop for experts, apprentices, distillation)."""
