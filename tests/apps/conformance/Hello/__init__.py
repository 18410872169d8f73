def main(payload: str) -> str:
    return f"Hello {payload}!"
