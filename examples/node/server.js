// A small Express app: the Node example Spread builds and runs.
const express = require("express");

const app = express();
const port = process.env.PORT || 8080;

app.get("/", (req, res) => {
  res.send("Hello from Node on Spread!\n");
});

app.listen(port, () => console.log(`listening on :${port}`));
