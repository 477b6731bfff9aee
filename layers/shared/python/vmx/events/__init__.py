"""Events on the stack's EventBridge bus: their versioned details, how they are published and read back."""
