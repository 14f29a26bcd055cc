print("fuzz-parsers: not yet")
