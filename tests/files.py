"""Real files of each supported format, made in the tests: an HTML article with noise, PDFs of pages."""

from __future__ import annotations

import io

import pypdf
from fpdf import FPDF

ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Station crew returns | Space Daily</title>
<meta property="og:title" content="Station crew returns safely">
<meta property="og:site_name" content="Space Daily">
<meta property="og:url" content="https://example.org/crew-returns">
<meta property="article:published_time" content="2023-09-27T11:00:00Z">
<link rel="canonical" href="https://example.org/crew-returns">
<script>var tracking = "SCRIPT NOISE";</script>
<style>body { color: red }</style>
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World news menu</a></li></ul></nav>
<header><div class="logo">Space Daily header banner</div></header>
<main><article>
<h1>Station crew returns safely</h1>
<p>Three crew members returned from the International Space Station on Wednesday after a year in
orbit, landing in Kazakhstan.</p>
<p>The Soyuz capsule touched down at 11:17 GMT, the Russian space agency <a href="/roscosmos">Roscosmos</a>
said in a statement on its <em>website</em>.</p>
<ul><li>Landing: Kazakhstan steppe</li><li>Mission length: 371 days</li></ul>
<p>NASA astronaut Frank Rubio set a new American record for the longest single spaceflight,
spending 371 days in space.</p>
</article></main>
<aside>Related: subscribe to our newsletter sidebar</aside>
<footer>Copyright 2020 Space Daily footer. All rights reserved. Privacy policy.</footer>
<script>console.log("MORE SCRIPT NOISE")</script>
</body></html>
"""

HTML_NOISE = ("SCRIPT NOISE", "World news menu", "header banner", "newsletter", "footer", "color: red")


def page_text(n: int) -> str:
    """A paragraph long enough to wrap over several lines of a PDF page, naming its page."""
    return f"Report page {n} says the crew worked on fluid physics experiments in orbit. " * 4


def make_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """A PDF with one page per string, each a heading and a wrapped paragraph, as fpdf2 writes it."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=12)
    for n, text in enumerate(pages, 1):
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, f"Heading of page {n}")
            pdf.ln(4)
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def encrypt(pdf: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    """The same PDF encrypted with AES; an empty user password only restricts, it hides nothing."""
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password, owner_password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
