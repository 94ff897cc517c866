from schemas.text import normalise_prompt


def test_normalise_prompt():
    assert normalise_prompt("  Golden   Hour!! ") == "golden hour"
    assert normalise_prompt("GOLDEN HOUR") == normalise_prompt("golden hour")
    assert normalise_prompt("golden hour, slightly") != normalise_prompt("golden hour")
    assert normalise_prompt("Ｍｏｒｏｃｃｏ") == "morocco"  # full-width letters (NFKC)
    assert normalise_prompt("!!!") == ""
