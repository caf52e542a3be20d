// Draws the page's mermaid diagrams, loading mermaid only when it is needed.
//
// This replaces mdbook-mermaid's mermaid-init.js in book.toml's
// `additional-js`. That script needs mermaid.min.js (2.6 MB) loaded and run
// on every page, before the reader can scroll or click. This one does
// nothing on a page without a `<pre class="mermaid">`; on a page with one,
// it waits until the page has loaded and painted its text, and loads
// mermaid only when a diagram comes near the visible part of the page. The
// print page draws every diagram at once, since it is about to be printed.
//
// mermaid.min.js is the copy mdBook makes of chapters/mermaid/ into the
// book (`mermaid/mermaid.min.js` from the book's root). It is loaded with a
// `<script src>` element, never fetched, so that it works from file:// too.
//
// The theme handling is that of mdbook-mermaid 0.17.1's mermaid-init.js
// (MPL-2.0), which this file replaces: diagrams are drawn in mermaid's
// dark theme under mdBook's dark themes, and switching between a light and
// a dark theme reloads the page to draw them again.
(() => {
    'use strict';

    const diagrams = Array.from(document.querySelectorAll('pre.mermaid'));
    if (diagrams.length === 0) {
        return;
    }

    // How close to the visible part of the page a diagram must come for
    // mermaid to be loaded and the diagram drawn, in screen heights: a
    // screen ahead, so that a reader scrolling at a normal pace does not
    // see it undrawn. (Two screens would draw chapter 3's first diagram as
    // soon as a phone opens the page, and loading and starting mermaid
    // then holds up the page for about half a second.)
    const SCREENS_AHEAD = 1;

    const darkThemes = ['ayu', 'navy', 'coal'];
    const lightThemes = ['light', 'rust'];
    const classes = document.documentElement.classList;
    const light = !darkThemes.some(theme => classes.contains(theme));

    // A switch to a theme of the other kind reloads the page, as
    // mermaid-init.js does: mermaid cannot recolour a drawn diagram.
    function reloadOnSwitch(themes, switchesKind) {
        for (const theme of themes) {
            const button = document.getElementById('mdbook-theme-' + theme);
            if (button !== null && switchesKind) {
                button.addEventListener('click', () => window.location.reload());
            }
        }
    }
    reloadOnSwitch(darkThemes, light);
    reloadOnSwitch(lightThemes, !light);

    // mermaid, loaded once, by the first diagram that needs it. mdBook's
    // page template defines `path_to_root` ("../" from a chapter in a
    // folder, "" from the book's root).
    let loading = null;
    function loadMermaid() {
        if (loading === null) {
            loading = new Promise((resolve, reject) => {
                const script = document.createElement('script');
                script.src = path_to_root + 'mermaid/mermaid.min.js';
                script.async = true;
                script.onload = () => {
                    window.mermaid.initialize({
                        startOnLoad: false,
                        theme: light ? 'default' : 'dark',
                    });
                    resolve(window.mermaid);
                };
                script.onerror = () => reject(new Error('cannot load ' + script.src));
                document.head.appendChild(script);
            });
        }
        return loading;
    }

    // Diagrams are drawn one after the other, each in a task of its own, so
    // that drawing several does not hold up the page for long at a time.
    let drawing = Promise.resolve();
    function draw(nodes) {
        drawing = drawing
            .then(loadMermaid)
            .then(async mermaid => {
                for (const node of nodes) {
                    await mermaid.run({nodes: [node]});
                    await new Promise(resolve => setTimeout(resolve, 0));
                }
            })
            .catch(error => console.error('mermaid:', error));
    }

    // Whether `node` is within SCREENS_AHEAD screens of the visible part of
    // the page.
    function isNear(node) {
        const box = node.getBoundingClientRect();
        const ahead = SCREENS_AHEAD * window.innerHeight;
        return box.bottom > -ahead && box.top < window.innerHeight + ahead;
    }

    function start() {
        const printing = document.querySelector('meta[name="robots"][content="noindex"]') !== null;
        if (printing || !('IntersectionObserver' in window)) {
            draw(diagrams);
            return;
        }
        // Diagrams near the screen now are drawn at once; the others when
        // the reader scrolls near them.
        const near = diagrams.filter(isNear);
        if (near.length > 0) {
            draw(near);
        }
        const observer = new IntersectionObserver(entries => {
            const coming = entries.filter(entry => entry.isIntersecting).map(entry => entry.target);
            coming.forEach(node => observer.unobserve(node));
            if (coming.length > 0) {
                draw(coming);
            }
        }, {rootMargin: SCREENS_AHEAD * 100 + '% 0px'});
        diagrams.filter(node => !near.includes(node)).forEach(node => observer.observe(node));
    }

    // After the load event. An IntersectionObserver reports only after the
    // browser has laid out and painted a frame, so the page's text is on
    // screen before any diagram work begins.
    if (document.readyState === 'complete') {
        setTimeout(start, 0);
    } else {
        window.addEventListener('load', () => setTimeout(start, 0), {once: true});
    }
})();
