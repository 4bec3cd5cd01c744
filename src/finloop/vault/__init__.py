"""The card vault: Luhn-checked card numbers tokenized under AES-GCM with versioned, rotatable keys."""
