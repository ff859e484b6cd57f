// Maps of sectors and areas, drawn with Leaflet (vendored, the global L). Tiles come from the service's
// tile server when one is configured (PLP_MAP_TILE_URL); without one, the shapes are drawn on a plain
// background, so that closed police networks still get them. Only shapes and counts are ever drawn: never
// where a member lives.

import { h } from "./dom.js";

let config = null;

async function mapConfig() {
  if (!config) config = (await (await fetch("/console/config.json", { cache: "no-store" })).json()).map;
  return config;
}

const BELGIUM = [[49.5, 2.5], [51.5, 6.4]];
const COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490"];

export class AreaMap {
  /** A map in a new element (returned by ``element``), labelled for screen readers. */
  static async open(label, { id } = {}) {
    const found = await mapConfig();
    const element = h("div", { class: "area-map", role: "img", "aria-label": label, id: id || null });
    return new AreaMap(element, found);
  }

  constructor(element, found) {
    this.element = element;
    this.tiles = found.tiles;
    this.attribution = found.attribution;
    this.map = null;
    this.shapes = null;
    this.drawing = null;
    this.clicks = [];
  }

  /** Start Leaflet once the element is in the page (it measures it). */
  start() {
    if (this.map) return this;
    this.map = L.map(this.element, { attributionControl: Boolean(this.tiles), zoomSnap: 0.25 });
    if (this.tiles) L.tileLayer(this.tiles, { attribution: this.attribution, maxZoom: 19 }).addTo(this.map);
    else this.element.classList.add("plain");
    this.shapes = L.featureGroup().addTo(this.map);
    this.drawing = L.featureGroup().addTo(this.map);
    this.map.fitBounds(BELGIUM);
    this.map.on("click", (event) => this.clicks.forEach((fn) => fn(event.latlng)));
    return this;
  }

  onClick(fn) {
    this.clicks.push(fn);
  }

  /** Draw the sectors (each {id, name, geometry, plp_id}); ``chosen`` ones stand out; ``labels``: id -> text. */
  showSectors(sectors, { chosen = new Set(), labels = null } = {}) {
    this.start();
    this.shapes.clearLayers();
    const plps = [...new Set(sectors.map((s) => s.plp_id))];
    for (const sector of sectors.filter((s) => s.geometry)) {
      const colour = COLOURS[plps.indexOf(sector.plp_id) % COLOURS.length];
      const picked = chosen.has(sector.id);
      const layer = L.geoJSON(sector.geometry, {
        style: { color: colour, weight: picked ? 3 : 1.5, fillOpacity: picked ? 0.35 : 0.08, dashArray: picked ? null : "4 4" },
      });
      const text = labels ? labels[sector.id] || sector.name : sector.name;
      layer.bindTooltip(text, { permanent: true, direction: "center", className: "sector-label" });
      this.shapes.addLayer(layer);
    }
    return this;
  }

  /** Draw the alert's circle ({center: {lat, lon}, radius_m}), or none. */
  showCircle(circle) {
    this.start();
    this.drawing.clearLayers();
    if (circle && circle.center && Number.isFinite(circle.center.lat) && Number.isFinite(circle.center.lon) && circle.radius_m > 0) {
      L.circle([circle.center.lat, circle.center.lon], { radius: circle.radius_m, color: "#b91c1c", weight: 2, fillOpacity: 0.15 })
        .addTo(this.drawing);
    }
    return this;
  }

  /** Draw the outline being drawn (a list of [lat, lon]). */
  showOutline(points) {
    this.start();
    this.drawing.clearLayers();
    if (points.length) L.polyline(points, { color: "#b91c1c", weight: 2 }).addTo(this.drawing);
    for (const point of points) L.circleMarker(point, { radius: 4, color: "#b91c1c" }).addTo(this.drawing);
    return this;
  }

  /** Show everything drawn (or Belgium, when nothing is). */
  fit() {
    this.start();
    this.map.invalidateSize();
    const bounds = L.featureGroup([...this.shapes.getLayers(), ...this.drawing.getLayers()]).getBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 17 });
    return this;
  }

  dispose() {
    if (this.map) this.map.remove();
    this.map = null;
  }
}

/** A closed GeoJSON polygon from points clicked on the map ([lat, lon] each). */
export function polygonOf(points) {
  const ring = points.map(([lat, lon]) => [Number(lon.toFixed(6)), Number(lat.toFixed(6))]);
  return { type: "Polygon", coordinates: [[...ring, ring[0]]] };
}
