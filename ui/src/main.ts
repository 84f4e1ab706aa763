import { mount } from "svelte";
// The shared stylesheet first, so components' own styles come after it.
import "./app.css";
import App from "./App.svelte";

mount(App, { target: document.getElementById("app")! });
