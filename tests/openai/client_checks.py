"""Drives `idlegrid serve` with the official openai client, exactly as a developer would.

Usage: client_checks.py MODE BASE_URL API_KEY MODEL
  main         one string, a batch (float), the same batch as base64, models.list, and every 400/401/404;
               prints {"batch": [[...], ...], "prompt_tokens": n} for the caller to check the vectors
  unavailable  expects 503 (no provider connected to the pool)
  timeout      expects 504 (a request past the server's deadline)
Exits non-zero with one line on stderr when a check fails.
"""

import array
import base64
import json
import sys

import openai

BATCH = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


def expect_error(kind, status, call, code=None):
    try:
        call()
    except kind as error:
        assert error.status_code == status, f"{kind.__name__}: status {error.status_code}, expected {status}"
        body = error.body if isinstance(error.body, dict) else {}
        assert "message" in body and "type" in body, f"error body {error.body!r} is not OpenAI's shape"
        if code is not None:
            assert error.code == code, f"code {error.code!r}, expected {code!r}"
        return error
    raise AssertionError(f"expected {kind.__name__} ({status})")


def main(base_url, key, model):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    # The client's default: it asks for base64 and decodes it.
    one = client.embeddings.create(model=model, input="The weather is lovely today.")
    assert len(one.data) == 1 and one.data[0].index == 0, one
    dims = len(one.data[0].embedding)
    assert dims > 0 and one.model == model and one.usage.prompt_tokens > 0, one

    floats = client.embeddings.create(model=model, input=BATCH, encoding_format="float", user="someone")
    assert [d.index for d in floats.data] == [0, 1, 2], floats
    assert all(len(d.embedding) == dims for d in floats.data)
    assert floats.usage.total_tokens == floats.usage.prompt_tokens > 0
    # Asked for explicitly, base64 comes back as the string: little-endian f32s.
    b64 = client.embeddings.create(model=model, input=BATCH, encoding_format="base64")
    for a, b in zip(floats.data, b64.data):
        assert isinstance(b.embedding, str), b
        decoded = array.array("f", base64.b64decode(b.embedding))
        assert len(decoded) == dims
        assert max(abs(x - y) for x, y in zip(a.embedding, decoded)) < 1e-6, "base64 differs from float"
    assert max(abs(x - y) for x, y in zip(one.data[0].embedding, floats.data[0].embedding)) < 1e-5
    assert model in [m.id for m in client.models.list().data]
    assert client.models.retrieve(model).id == model

    wrong = openai.OpenAI(base_url=base_url, api_key="not-the-key", max_retries=0)
    expect_error(openai.AuthenticationError, 401, lambda: wrong.embeddings.create(model=model, input="x"),
                 "invalid_api_key")
    expect_error(openai.AuthenticationError, 401, lambda: wrong.models.list())
    expect_error(openai.NotFoundError, 404, lambda: client.embeddings.create(model="text-embedding-3-small", input="x"),
                 "model_not_found")
    expect_error(openai.NotFoundError, 404, lambda: client.models.retrieve("text-embedding-3-small"), "model_not_found")
    bad = [
        ("empty string", dict(input="")),
        ("empty list", dict(input=[])),
        ("2,049 texts", dict(input=["x"] * 2049)),
        ("dimensions", dict(input="x", dimensions=dims // 2)),
        ("token ids", dict(input=[[1, 2, 3]])),
        ("wrong type", dict(input=5)),
        ("encoding", dict(input="x", encoding_format="int8")),
        ("body over 8 MiB", dict(input=["word " * (2 << 20)])),
    ]
    for what, kwargs in bad:
        try:
            expect_error(openai.BadRequestError, 400, lambda: client.embeddings.create(model=model, **kwargs))
        except AssertionError as failure:
            raise AssertionError(f"{what}: {failure}") from None
    print(json.dumps({"batch": [d.embedding for d in floats.data], "prompt_tokens": floats.usage.prompt_tokens}))


def status_only(base_url, key, model, kind, status):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    texts = ["the cat sat on the mat " * 8] * 2048 if status == 504 else ["x"]
    error = expect_error(kind, status, lambda: client.embeddings.create(model=model, input=texts))
    print(json.dumps({"status": error.status_code, "message": error.body.get("message")}))


if __name__ == "__main__":
    mode, base_url, key, model = sys.argv[1:5]
    try:
        if mode == "main":
            main(base_url, key, model)
        elif mode == "unavailable":
            status_only(base_url, key, model, openai.InternalServerError, 503)
        elif mode == "timeout":
            status_only(base_url, key, model, openai.APIStatusError, 504)
        else:
            raise AssertionError(f"unknown mode {mode}")
    except AssertionError as failure:
        print(f"check failed: {failure}", file=sys.stderr)
        sys.exit(1)
