// Checks of a console page in the browser: no sideways scrolling, every field labelled, and
// text contrast of at least 4.5:1 (WCAG AA) against the background it is drawn on.
// tests/test_console_browser.py evaluates it; it returns the problems found.
() => {
  const problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`scrolls sideways: ${document.documentElement.scrollWidth}px`);
  }
  for (const field of document.querySelectorAll("input, select, textarea")) {
    if (field.type === "hidden") continue;
    const named = (field.labels && field.labels.length) || field.getAttribute("aria-label");
    if (!named) problems.push(`unlabelled field ${field.name}`);
  }
  const channels = (color) => color.match(/[\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const color = channels(getComputedStyle(node).backgroundColor);
      if (color.length < 4 || color[3] > 0) return color.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const texts = document.querySelectorAll("p, a, span, li, td, th, dt, dd, label, button, summary, h1, h2, code, time, blockquote, legend");
  for (const element of texts) {
    const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(element);
    if (!own || style.visibility === "hidden" || element.closest(".visually-hidden, .skip")) continue;
    const a = luminance(channels(style.color).slice(0, 3));
    const b = luminance(background(element));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} for "${element.textContent.trim().slice(0, 30)}"`);
  }
  return problems;
}
