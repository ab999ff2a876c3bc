"""Declared process experiments: a change to how a group works, judged by difference-in-differences
against comparable groups on every learning run (`did`, `verdict`), read from the store (`panel`),
declared and listed (`store`) and adopted through the policy (`evaluate`)."""
