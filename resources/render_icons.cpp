// Renders the SVG icons to the committed PNGs (the app and its .deb use PNGs, so Qt SVG is not a
// run-time dependency). Not part of the build; see README.md here for the command.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QGuiApplication>
#include <QImage>
#include <QPainter>
#include <QSvgRenderer>
int main(int argc, char** argv) {
  QGuiApplication app(argc, argv);
  for (int i = 1; i + 2 < argc; i += 3) {
    QSvgRenderer r(QString(argv[i]));
    const int n = atoi(argv[i + 2]);
    QImage img(n, n, QImage::Format_ARGB32_Premultiplied);
    img.fill(Qt::transparent);
    QPainter p(&img);
    p.setRenderHint(QPainter::Antialiasing);
    r.render(&p);
    p.end();
    if (!img.save(argv[i + 1])) return 1;
  }
  return 0;
}
