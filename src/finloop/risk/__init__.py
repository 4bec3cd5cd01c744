"""Risk control: a real-time decision engine with rules that analysts change without code, lists and
velocity features."""
