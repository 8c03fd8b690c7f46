// The drawing the resvg examples render, in Node (resvg.mjs) and in a page
// (resvg.html): 40 circles and a curve, 800 pixels wide. Returns the PNG.
export function render(Resvg) {
  const shapes = Array.from(
    { length: 40 },
    (_, i) =>
      `<circle cx="${20 + (i % 8) * 45}" cy="${30 + Math.floor(i / 8) * 45}" r="${8 + (i % 5) * 3}" fill="hsl(${i * 9},70%,50%)" stroke="#222" stroke-width="2"/>`,
  ).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="260" viewBox="0 0 400 260"><rect width="400" height="260" fill="#f4f1ea"/>${shapes}<path d="M10 250 C 100 150, 300 350, 390 240" stroke="#06c" stroke-width="5" fill="none"/></svg>`;
  return new Resvg(svg, { fitTo: { mode: "width", value: 800 } }).render().asPng();
}
