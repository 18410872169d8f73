async def main(payload: str) -> str:
    return f"Hi {payload}!"
