// Typeset the math of every page (also after Material's instant navigation) with the
// KaTeX copy bundled in the site; pymdownx.arithmatex wraps formulas in \( \) and \[ \].
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
});
